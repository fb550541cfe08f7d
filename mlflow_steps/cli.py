"""`mlflow-steps`: inspect a codeset, build its environment image, run its entry points."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from mlflow_steps import __version__
from mlflow_steps.components.builder import build as builder
from mlflow_steps.components.builder.backends import split
from mlflow_steps.components.builder.oci.registry import BaseImageError
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.reading.source import codeset_source
from mlflow_steps.components.builder.step import BUILDER
from mlflow_steps.components.launcher import run as launcher
from mlflow_steps.components.problems import StepError
from mlflow_steps.components.runtime.inputs import InputError, parse_entrypoint_args
from mlflow_steps.components.runtime.outputs import output_paths, publish
from mlflow_steps.components.runtime.step import RUNTIME
from mlflow_steps.components.spec import (
    BOOLEAN_WORDS,
    StepSpec,
    field_flag,
    parse_bool,
    resolve,
)
from mlflow_steps.components.subprocess_env import keep_environ_private
from mlflow_steps.generators import catalog

EXIT_FAILED = 1
STDERR_FD = 2
# What a shell reports for a command that wrote into a closed pipe (128 + SIGPIPE).
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
# Runtime input -> the flags `mlflow-steps run` takes for it: the short one, and the in-image
# module's own (`python -m mlflow_steps_runtime` takes both too).
RUNTIME_FLAGS = {
    "mlflow_experiment": ("--experiment", "--mlflow-experiment"),
    "mlflow_entrypoint": ("--entrypoint", "--mlflow-entrypoint"),
    "mlflow_entrypoint_args": ("--entrypoint-args", "--mlflow-entrypoint-args"),
    "mlflow_artifact_path": ("--artifact-path", "--mlflow-artifact-path"),
    "context": ("--context",),
    "image_digest": ("--image-digest",),
}


def add_spec_flags(
    parser: argparse.ArgumentParser, spec: StepSpec, skip: tuple[str, ...] = ()
) -> None:
    """One flag per input of the step spec; each also read from FUSEML_<NAME>."""
    for item in spec.inputs:
        if item.name in skip:
            continue
        default = f" (env {item.env}; default: {item.default or 'empty'})"
        if item.type == "boolean":
            add_boolean_flag(parser, item.flag, item.name, item.description + default)
        else:
            parser.add_argument(
                item.flag, dest=item.name, default=None, help=item.description + default
            )


def add_boolean_flag(parser, flag: str, dest: str, help: str) -> None:
    """`--flag`, `--flag=false` or `--flag false`; see `boolean_flags_spelled_out`."""
    parser.add_argument(flag, dest=dest, default=None, metavar="true|false", help=help)


def boolean_flags() -> set[str]:
    return {i.flag for spec in (BUILDER, RUNTIME) for i in spec.inputs if i.type == "boolean"}


def boolean_flags_spelled_out(argv: Sequence[str]) -> list[str]:
    """A bare boolean flag never takes the path as its value: `--verbose PATH` becomes
    `--verbose=true PATH`; `--verbose false` (a boolean word next) becomes `--verbose=false`."""
    flags, out = boolean_flags(), []
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in flags:
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if following is not None and following.strip().lower() in BOOLEAN_WORDS:
                out.append(f"{token}={following}")
                index += 2
                continue
            token = f"{token}=true"
        out.append(token)
        index += 1
    return out


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlflow-steps", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mlflow-steps {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser("inspect", help="show what the builder finds and would build")
    inspect.add_argument("path", help="the codeset folder (holds MLproject)")
    add_spec_flags(inspect, BUILDER)
    inspect.add_argument(
        "--sbom",
        action="store_true",
        help="print the image's bill of materials (CycloneDX 1.5 JSON) and nothing else: the "
        "one attached to the pushed image, else the one a build would attach (needs a lock)",
    )

    build = commands.add_parser("build", help="build and push the codeset's environment image")
    build.add_argument("path", help="the codeset folder (holds MLproject)")
    add_spec_flags(build, BUILDER)
    build.add_argument("--output", help="write the image reference to this file")
    build.add_argument("--digest-output", help="write the image digest to this file")
    build.add_argument(
        "--phase",
        choices=split.PHASES,
        help="one container of a build split in three (the Kaniko variant): `download` holds "
        "the index settings and only downloads into --downloads; `install` builds from there "
        "into an OCI image layout, with no index setting and no push credential; `push` "
        "pushes that layout with the registry credentials and writes the outputs "
        "(components/builder/backends/split.py)",
    )
    build.add_argument("--downloads", help="with --phase: the absolute folder the containers share")
    build.add_argument(
        "--job",
        help="with --phase download or push: an absolute folder for the job and the bill of "
        "materials that the build container does not mount (default: the --downloads folder)",
    )
    build.add_argument(
        "--layout",
        help="with --phase install or push: the OCI image layout folder (default "
        "DOWNLOADS/layout), for engines whose containers share no folder (KFP artifacts)",
    )
    source = BUILDER.outputs[-1]
    flag = BUILDER.output_flags[source.name]
    build.add_argument(
        flag,
        help='write the codeset\'s git source as JSON {"uri": ..., "digest": ...} (Tekton '
        "Chains' ARTIFACT_INPUTS; empty strings when not a git checkout) to this file",
    )
    for item in source.fields:
        build.add_argument(
            field_flag(flag, item.name), help=f"write the source's {item.name} to this file"
        )

    run = commands.add_parser(
        "run", help="run an entry point (in the built image, or in a cached local venv)"
    )
    run.add_argument("path", help="the codeset folder (holds MLproject)")
    run.add_argument("--image", help="the builder's output; without it, --engine local")
    run.add_argument(
        "--engine",
        choices=launcher.ENGINES,
        default=None,
        help="local (default without --image), buildah, docker or podman",
    )
    for spec_input in RUNTIME.inputs:
        if spec_input.name in RUNTIME_FLAGS:
            run.add_argument(
                *RUNTIME_FLAGS[spec_input.name],
                dest=spec_input.name,
                default=None,
                help=f"{spec_input.description} (env {spec_input.env}; "
                f"default: {spec_input.default or 'empty'})",
            )
    add_boolean_flag(run, "--verbose", "verbose", "verbose logging (env FUSEML_VERBOSE)")
    run.add_argument("--output", help="write the artifact (model) URL to this file")
    run.add_argument(
        "--model-uri-output",
        help="write the logged model's models:/<model_id> URI to this file (empty before MLflow 3)",
    )
    generate = commands.add_parser("generate", help="write every engine's YAML for both steps")
    generate.add_argument(
        "--engine",
        choices=[*catalog.ENGINES, "all"],
        default="all",
        help="which engine's files to write (default: all)",
    )
    generate.add_argument("--out", required=True, help="folder to write DIR/<engine>/... into")
    generate.add_argument(
        "--version",
        default=catalog.GenerateOptions.version,
        help="catalog version (Tekton task/<name>/<version>/)",
    )
    generate.add_argument(
        "--builder-image",
        default="",
        help="builder image (tag or @sha256 digest); default: the project's",
    )
    generate.add_argument(
        "--build-engine",
        choices=["none", "kaniko", "buildah"],
        default="none",
        help="the builder variant the pipelines use, and --builder-image replaces: none (no "
        "engine, non-root; default), kaniko (root) or buildah (privileged); the catalog has all",
    )

    images = commands.add_parser(
        "images", help="build the builder step's images from this package and push them"
    )
    images.add_argument("--registry", required=True, help="registry host (and port) to push to")
    images.add_argument(
        "--repository-prefix",
        default="mlflow-steps",
        help="images go to REGISTRY/PREFIX/mlflow-builder[-<variant>] (default: mlflow-steps)",
    )
    images.add_argument("--tag", default=__version__, help=f"image tag (default {__version__})")
    images.add_argument(
        "--variant",
        choices=["unprivileged", "buildah", "kaniko", "all"],
        default="all",
        help="which builder image to build: unprivileged (mlflow-builder: no engine, non-root), "
        "buildah, kaniko (default: all)",
    )
    images.add_argument("--base-image", default="", help="base with python3 (and apt-get)")
    images.add_argument("--kaniko-image", default="", help="Kaniko executor image to copy from")
    add_boolean_flag(images, "--insecure", "insecure", "plain-http registry")
    images.add_argument("--pip-index-url", default="", help="package index (build argument)")
    images.add_argument(
        "--pip-extra-index-url", default="", help="extra indexes, space-separated (build argument)"
    )
    images.add_argument(
        "--pip-trusted-host", default="", help="hosts trusted without TLS (build argument)"
    )
    images.add_argument(
        "--engine",
        choices=["buildah", "podman", "docker"],
        default="buildah",
        help="what builds the images (default: buildah)",
    )
    add_boolean_flag(images, "--verbose", "verbose", "print each build command")
    images.add_argument("--output", help="write `VARIANT REFERENCE@DIGEST` lines to this file")

    stack = commands.add_parser(
        "stack",
        help="a registry, package index and tracking server on 127.0.0.1, to try the steps "
        "without a cluster",
    )
    stack_commands = stack.add_subparsers(dest="stack_command", required=True)
    up = stack_commands.add_parser(
        "up",
        help="start them, print their settings as NAME=VALUE lines, run until interrupted",
    )
    up.add_argument(
        "--state",
        default=None,
        help="folder for images, runs, the base image and wheels, kept between runs "
        "(env MLFLOW_STEPS_STACK_STATE; default: ~/.cache/mlflow-steps/stack)",
    )
    for name, port in stack_ports().items():
        up.add_argument(f"--{name}-port", type=int, default=port, help=f"default: {port}")

    group = run.add_argument_group("local environment (same inputs as build; they decide the tag)")
    add_spec_flags(group, BUILDER, skip=("verbose", "engine", "context"))  # type: ignore[arg-type]
    return parser


def builder_options(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions.from_values(resolve(BUILDER, vars(args)))


def cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    options = builder_options(args)
    if args.sbom:
        out.write(builder.image_sbom(args.path, options).decode("utf-8"))
        return 0
    try:
        pin_base = builder.base_resolver(options, retries=0)  # inspect answers at once
        the_plan, unresolved = builder.plan(args.path, options, pin_base), ""
    except BaseImageError as exc:  # shown below: the rest of what inspect finds still holds
        the_plan, unresolved = builder.plan(args.path, options), str(exc)
    codeset, env = the_plan.codeset, the_plan.codeset.environment
    print(f"codeset:      {codeset.root}", file=out)
    if codeset.workspace and codeset.workspace != codeset.root:
        print(f"workspace:    {codeset.workspace} (context {options.context})", file=out)
    if codeset.mlproject is None:
        print(
            "mlproject:    - (none: the entry points are the codeset's scripts, by name)", file=out
        )
    else:
        print(f"mlproject:    {codeset.mlproject.name} (name: {codeset.name or '-'})", file=out)
    shown_env = env.path.name if env.path else "MLproject docker_env"
    if codeset.mlproject is None and env.path is None:
        shown_env = "none: MLflow's default, Python and MLflow alone"
    print(f"environment:  {env.kind} ({shown_env})", file=out)
    if the_plan.recipe:
        print(f"base image:   {the_plan.recipe.base_image}", file=out)
        if env.kind == "conda":
            print(f"env manager:  {options.env_manager}", file=out)
    shipped = sorted(env.shipped)
    if shipped:
        shown = ", ".join(shipped[:4]) + (
            f", ... ({len(shipped)} files)" if len(shipped) > 4 else ""
        )
        print(f"ships:        {shown}", file=out)
    print("entry points:", file=out)
    if codeset.mlproject is None:
        scripts = sorted(p.name for p in codeset.root.iterdir() if p.suffix in (".py", ".sh"))
        print(f"  scripts, by name: {', '.join(scripts)}", file=out)
    for entry in codeset.entry_points.values():
        params = ", ".join(
            f"{p.name}: {p.type}" + ("" if p.required else f" = {p.default!r}")
            for p in entry.parameters.values()
        )
        print(f"  {entry.name}({params})", file=out)
        for line in entry.command.strip().splitlines():
            print(f"      {line}", file=out)
    if unresolved:
        print(f"tag:          - (decided by the base's digest; {unresolved})", file=out)
    else:
        print(f"tag:          {the_plan.tag or '-'}", file=out)
        print(f"image:        {the_plan.pull_reference}", file=out)
        print(f"push to:      {the_plan.push_reference}", file=out)
    for warning in the_plan.warnings:
        print(f"warning:      {warning}", file=out)
    if the_plan.install.lock is not None:
        print("lock (PEP 751, kept in the image at /opt/mlflow-env/pylock.toml):", file=out)
        print(the_plan.install.lock.decode(), end="", file=out)
    return 0


def cmd_build(args: argparse.Namespace, out: TextIO) -> int:
    # What the build starts (uv, the base's interpreter, the engine) runs as this user: none
    # of it may read this process's environment, where credentials may be (subprocess_env).
    keep_environ_private()
    options = builder_options(args)
    if bool(args.phase) != bool(args.downloads):
        raise StepError("build: --phase and --downloads go together (the Kaniko variant's steps)")
    if args.layout and args.phase not in ("install", "push"):
        raise StepError("build: --layout goes with --phase install or --phase push")
    layout = Path(args.layout) if args.layout else None
    if args.job and args.phase not in ("download", "push"):
        raise StepError("build: --job goes with --phase download or --phase push")
    job_folder = Path(args.job) if args.job else None
    if args.phase == "download":
        split.download(args.path, options, Path(args.downloads), job_folder=job_folder)
        return 0
    if args.phase == "install":
        split.install(options, Path(args.downloads), layout=layout)
        return 0
    if args.phase == "push":
        result = split.push(options, Path(args.downloads), layout=layout, job_folder=job_folder)
    else:
        result = builder.build(args.path, options)
    publish(result.image, output_paths(args.output))
    if args.digest_output and result.digest:
        publish(result.digest, [Path(args.digest_output)])
    write_source(args, Path(args.path))
    print(result.image, file=out)
    return 0


def write_source(args: argparse.Namespace, codeset: Path) -> None:
    """The `--source-*-output` files: the codeset's git remote and commit, for provenance."""
    wanted = {
        "source_output": None,
        "source_uri_output": "uri",
        "source_digest_output": "digest",
    }
    if not any(getattr(args, dest, None) for dest in wanted):
        return
    found = codeset_source(codeset).as_object()
    for dest, field_name in wanted.items():
        path = getattr(args, dest, None)
        if path:
            value = found[field_name] if field_name else json.dumps(found, sort_keys=True)
            publish(value, [Path(path)])


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    engine = args.engine or (default_image_engine() if args.image else "local")
    try:  # checked here too, before any engine starts (the runtime checks it again)
        parse_entrypoint_args(getattr(args, "mlflow_entrypoint_args", None) or "")
    except InputError as exc:
        raise StepError(str(exc)) from None
    flags = [
        f"--{name.replace('_', '-')}={getattr(args, name)}"
        for name in RUNTIME_FLAGS
        if getattr(args, name) is not None
    ]
    values = resolve(BUILDER, {**vars(args), "engine": "auto"})
    if values["verbose"]:
        flags.append("--verbose=true")
    request = launcher.RunRequest(
        project=Path(args.path),
        engine=engine,
        image=args.image,
        runtime_flags=flags,
        options=BuildOptions.from_values(values),
    )
    result = launcher.run(request, os.environ, builder.stderr)
    publish(result.model_url, output_paths(args.output))
    if args.model_uri_output:
        publish(result.model_uri, [Path(args.model_uri_output)])
    print(result.model_url, file=out)
    return 0


def default_image_engine() -> str:
    return next((e for e in ("buildah", "podman", "docker") if shutil.which(e)), "buildah")


def cmd_generate(args: argparse.Namespace, out: TextIO) -> int:
    engines = list(catalog.ENGINES) if args.engine == "all" else [args.engine]
    options = catalog.GenerateOptions(args.version, args.builder_image, args.build_engine)
    try:
        written = catalog.generate(engines, Path(args.out), options)
    except ImportError as exc:
        raise StepError(
            f"generate needs Hera and kfp ({exc.name} is missing): "
            "pip install 'mlflow-steps[engines]'"
        ) from None
    for path in written:
        print(path, file=out)
    return 0


def flag_bool(value: str | None, flag: str) -> bool:
    try:
        return parse_bool(value or "false", flag)
    except ValueError as exc:
        raise StepError(str(exc)) from None


def cmd_images(args: argparse.Namespace, out: TextIO) -> int:
    from mlflow_steps.components.builder.images import publish

    request = publish.ImagesRequest(
        registry=args.registry,
        repository_prefix=args.repository_prefix,
        tag=args.tag,
        variants=publish.VARIANTS if args.variant == "all" else (args.variant,),
        base_image=args.base_image,
        kaniko_image=args.kaniko_image or publish.DEFAULT_KANIKO,
        insecure=flag_bool(args.insecure, "--insecure"),
        pip_index_url=args.pip_index_url,
        pip_extra_index_url=args.pip_extra_index_url,
        pip_trusted_host=args.pip_trusted_host,
        engine=args.engine,
        verbose=flag_bool(args.verbose, "--verbose"),
    )
    pushed = publish.build_images(request, builder.stderr)
    if args.output:
        publish.write_output(pushed, Path(args.output))
    for variant, reference in pushed.items():
        print(f"{variant} {reference}", file=out)
    return 0


def stack_ports() -> dict[str, int]:
    from mlflow_steps.stack import DEFAULT_PORTS

    return DEFAULT_PORTS


def cmd_stack(args: argparse.Namespace, out: TextIO) -> int:
    """Start the stack, print its settings (stdout, one NAME=VALUE line each, shell-quoted:
    `set -a; . ./stack.env; set +a` makes `build` and `run` use it), then wait for SIGINT or
    SIGTERM and stop every server."""
    import shlex

    from mlflow_steps import stack

    state = Path(args.state) if args.state else stack.state_from_env()
    ports = {name: getattr(args, f"{name}_port") for name in stack.DEFAULT_PORTS}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with stack.running(state, ports, builder.stderr) as up:
            for name, value in up.settings().items():
                print(f"{name}={shlex.quote(value)}", flush=True, file=out)
            builder.stderr(f"mlflow-steps stack: up (state in {state}); Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    signal.pause()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        raise StepError(f"the stack could not start: {exc}") from None
    return 0


COMMANDS = {
    "inspect": cmd_inspect,
    "build": cmd_build,
    "run": cmd_run,
    "generate": cmd_generate,
    "images": cmd_images,
    "stack": cmd_stack,
}


def input_flags(command: str) -> dict[str, list[str]]:
    """{input name: its flags} of one command, as its `--help` spells them."""
    parser = make_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        action.dest: list(action.option_strings)
        for action in commands.choices[command]._actions
        if action.option_strings
    }


@contextlib.contextmanager
def outputs_only_on_stdout() -> Iterator[TextIO]:
    """While a command runs, everything but its outputs goes to stderr: file descriptor 1
    points at stderr (what any engine, installer or script it starts writes to its stdout)
    and so does `sys.stdout` (a stray `print`); the command writes its outputs to the stream
    this yields, the original stdout. Without a real stdout (a caller that replaced
    `sys.stdout`, as pytest's capsys does), the outputs go to that replacement."""
    original = sys.stdout
    try:
        fd = original.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd < 0:
        sys.stdout = sys.stderr
        try:
            yield original
        finally:
            sys.stdout = original
        return
    original.flush()
    kept = os.dup(fd)
    os.dup2(STDERR_FD, fd)
    with open(kept, "w", encoding=original.encoding, errors=original.errors, buffering=1) as out:
        sys.stdout = sys.stderr
        try:
            yield out
        finally:
            sys.stdout = original
            os.dup2(kept, fd)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0, 1 on a step error (one `error:` line on stderr), 2 on a usage error,
    141 when stdout's reader has gone (`| head -1`), quietly. stdout carries the command's
    outputs only (`outputs_only_on_stdout`)."""
    try:
        args = make_parser().parse_args(
            boolean_flags_spelled_out(sys.argv[1:] if argv is None else argv)
        )
        with outputs_only_on_stdout() as out:
            try:
                code = COMMANDS[args.command](args, out)
            except StepError as exc:
                print(f"mlflow-steps {args.command}: error: {exc}", file=sys.stderr)
                code = EXIT_FAILED
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # As Python's docs advise (library/signal, "Note on SIGPIPE"): point stdout at
        # /dev/null so the flush at exit cannot fail again, and leave as a tool killed by
        # SIGPIPE would be reported, without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
