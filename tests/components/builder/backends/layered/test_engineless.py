"""The engine-less build's pieces that need no server: the platform it resolves for, the venv
skeleton it writes, the wheel a base's glibc admits, and which codesets it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_steps.components.builder.backends.layered.assemble import Fallback, refuse_sdists
from mlflow_steps.components.builder.backends.layered.base_files import BaseFacts
from mlflow_steps.components.builder.backends.layered.engineless import (
    same_resolution,
    skeleton,
    uv_platform,
)
from mlflow_steps.components.builder.backends.layered.wheels import Target, pins_for
from mlflow_steps.components.builder.build import engineless_reason
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.planning.plan import InstallPlan
from mlflow_steps.components.builder.planning.resolution import Distribution, DistributionFile
from mlflow_steps.components.problems import StepError
from tests.support.require import require

VENV = "/opt/mlflow-env"


def test_the_platform_follows_the_bases_glibc_within_what_uv_names():
    assert uv_platform(Target("3.11.2", "x86_64", "2.36")) == "x86_64-manylinux_2_36"
    assert uv_platform(Target("3.13.5", "x86_64", "2.41")) == "x86_64-manylinux_2_40"
    assert uv_platform(Target("3.9.2", "aarch64", "2.28")) == "aarch64-manylinux_2_28"
    with pytest.raises(Fallback, match=r"glibc 2\.12 is older than manylinux2014"):
        uv_platform(Target("3.8.0", "x86_64", "2.12"))


def test_the_lock_resolved_for_a_guess_is_kept_only_when_the_base_resolves_the_same():
    """The guess (resolved while the base is read) against the base's own Python and glibc:
    the patch version does not matter; the minor version, the machine and uv's platform do."""
    guess = Target("3.11.7", "x86_64", "2.36")
    assert same_resolution(guess, Target("3.11.2", "x86_64", "2.36"))
    assert not same_resolution(guess, Target("3.13.5", "x86_64", "2.36"))
    assert not same_resolution(guess, Target("3.11.2", "x86_64", "2.31"))
    assert not same_resolution(guess, Target("3.11.2", "aarch64", "2.36"))
    assert not same_resolution(guess, Target("3.11.2", "x86_64", "2.12"))  # refused: Fallback
    # glibc beyond the newest tag uv names resolves as that tag does
    assert same_resolution(Target("3.13.0", "x86_64", "2.40"), Target("3.13.5", "x86_64", "2.41"))


def wheel(name: str) -> DistributionFile:
    return DistributionFile(name, f"http://index/{name}", "ab" * 32)


def test_an_older_glibc_takes_the_wheel_it_can_load_or_is_refused_clearly():
    dist = Distribution("fast", "1.0", files=(
        wheel("fast-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
        wheel("fast-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    ))  # fmt: skip
    new, old = Target("3.11.2", "x86_64", "2.36"), Target("3.11.2", "x86_64", "2.17")
    assert "manylinux_2_28" in (pins_for([dist], new, set())[0].wheel_url or "")
    assert "manylinux2014" in (pins_for([dist], old, set())[0].wheel_url or "")
    only_new = Distribution("fast", "1.0", files=(dist.files[0],))
    pins = pins_for([only_new], old, set())
    with pytest.raises(Fallback, match=r"no wheel for this base .*glibc 2\.17.* of fast 1\.0"):
        refuse_sdists(pins, old)


def test_the_skeleton_runs_the_bases_interpreter_as_a_venv(tmp_path):
    """The skeleton pointed at this machine's own interpreter: it starts as a venv."""
    python = os.path.realpath(sys.executable)
    version = "{}.{}.{}".format(*sys.version_info[:3])
    facts = BaseFacts(version, "x86_64", "2.36", python, frozenset())
    skeleton(tmp_path, facts)
    venv = tmp_path / VENV.lstrip("/")
    config = (venv / "pyvenv.cfg").read_text()
    assert f"home = {Path(python).parent}\n" in config and f"version_info = {version}" in config
    assert os.readlink(venv / "bin" / "python") == python
    assert (
        os.readlink(venv / "bin" / "python3") == "python" and os.readlink(venv / "lib64") == "lib"
    )
    site = "lib/python{}.{}/site-packages".format(*sys.version_info[:2])
    assert (venv / site).is_dir()
    asked = "import sys; print(sys.prefix, sys.prefix != sys.base_prefix)"
    done = subprocess.run([venv / "bin" / "python", "-c", asked], capture_output=True, text=True)
    assert done.stdout.split() == [str(venv), "True"], done.stderr


@pytest.mark.parametrize(
    ("plan", "options", "reason"),
    [
        (InstallPlan("conda", "conda", "miniconda"), BuildOptions(), "env_manager=conda"),
        (InstallPlan("docker_env", "runtime", "img"), BuildOptions(), "is not a venv"),
        (
            InstallPlan("pip", "venv", "python:3.11", system_packages=("libgomp1",)),
            BuildOptions(),
            "system_packages is set",
        ),
        (
            InstallPlan("pip", "venv", "python:3.11"),
            BuildOptions(layering="single"),
            "layering=single",
        ),
        (InstallPlan("pip", "venv", "python:3.11"), BuildOptions(), ""),
    ],
)
def test_what_the_engine_less_build_refuses_before_anything_runs(plan, options, reason):
    found = engineless_reason(plan, options)
    assert (reason in found) if reason else found == ""


def stand_in_base(rootfs: Path, script: str) -> list[str]:
    """A base's "interpreter" made of this machine's dash, its libc and loader copied into
    `rootfs` and run as the base's is (its loader, --library-path into the tree): `script`
    stands in for the interpreter a hostile base ships."""
    ldd = subprocess.run(["ldd", "/bin/dash"], capture_output=True, text=True, check=True)
    for path in [word for word in ldd.stdout.split() if word.startswith("/")] + ["/bin/dash"]:
        copy = rootfs / path.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(Path(path).read_bytes())
        copy.chmod(0o755)
    (rootfs / "python.sh").write_text(script)
    loader = next(rootfs.rglob("ld-linux*"))
    folders = ":".join(str(p.parent) for p in rootfs.rglob("libc.so.6"))
    return [str(loader), "--library-path", folders, str(rootfs / "bin" / "dash"),
            str(rootfs / "python.sh")]  # fmt: skip


def test_the_bases_own_interpreter_runs_confined_without_the_builders_credentials(
    tmp_path, monkeypatch
):
    """When no interpreter of the base's minor version is on the builder, the base's own is
    run from its files. The base may be the codeset's (docker_env): it gets a minimal
    environment (subprocess_env; it once inherited the builder's whole one) and runs under
    Landlock, so the registry's config file, readable by the builder's user, and TCP are out
    of its reach (attack review: it could read them). The stand-in base prints what it could
    reach, then fails, so that its output is the error."""
    from mlflow_steps.components import confinement
    from mlflow_steps.components.builder.backends.layered import engineless

    require(confinement.available(), "needs Landlock (Linux 5.13+, `landlock` LSM), x86_64/arm64")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "config.json").write_text('{"auths": {"r": {"auth": "czNjcmV0"}}}')
    rootfs = tmp_path / "rootfs"
    script = (
        'echo "HOME=$HOME DOCKER_CONFIG=${DOCKER_CONFIG-unset}" >&2\n'
        'echo "NETRC=${MLFLOW_STEPS_INDEX_NETRC-unset}" >&2\n'
        f"if read line < {secrets}/config.json; then echo CREDENTIALS-READ >&2; fi\n"
        "exit 3\n"
    )
    argv = stand_in_base(rootfs, script)
    monkeypatch.setattr(engineless.host_install, "interpreter_for", lambda minor: None)
    monkeypatch.setattr(engineless, "interpreter_argv", lambda root, facts: argv)
    monkeypatch.setenv("MLFLOW_STEPS_INDEX_NETRC", "machine idx login u password s3cret")
    monkeypatch.setenv("DOCKER_CONFIG", str(secrets))
    version = "{}.{}.{}".format(*sys.version_info[:3])
    facts = BaseFacts(version, "x86_64", "2.36", "/usr/bin/python3", frozenset())
    with pytest.raises(Fallback) as raised:
        engineless.compiler_for(facts, lambda: rootfs)
    seen = str(raised.value)
    assert "Permission denied" in seen and "CREDENTIALS-READ" not in seen
    assert "s3cret" not in seen and "NETRC=unset" in seen
    assert "HOME=/nonexistent DOCKER_CONFIG=unset" in seen


def test_a_kernel_without_landlock_never_runs_the_bases_interpreter(tmp_path, monkeypatch):
    """No Landlock (an old kernel, or not in its LSM list): the base's interpreter is never
    started; the build says what to do instead."""
    from mlflow_steps.components.builder.backends.layered import engineless

    started = tmp_path / "started"
    monkeypatch.setattr(engineless.host_install, "interpreter_for", lambda minor: None)
    monkeypatch.setattr(engineless.confinement, "available", lambda: False)
    monkeypatch.setattr(engineless, "interpreter_argv", lambda root, facts: ["touch", started])
    facts = BaseFacts("3.13.5", "x86_64", "2.41", "/usr/bin/python3", frozenset())
    with pytest.raises(Fallback, match=r"no Landlock.*uv python install.*compile_bytecode=false"):
        engineless.compiler_for(facts, lambda: tmp_path)
    assert not started.exists()


def test_the_bases_own_interpreter_cannot_write_the_tree_it_compiles(tmp_path):
    """It reads the staged tree and sends its bytecode over a pipe; the builder writes it. A
    stand-in base that tries to plant a file (or a symlink, in the attack review) in the tree
    gets `Permission denied`, and its compile then fails on the record it was not asked for."""
    from mlflow_steps.components import confinement
    from mlflow_steps.components.builder.backends.layered import host_install

    require(confinement.available(), "needs Landlock (Linux 5.13+, `landlock` LSM), x86_64/arm64")
    root = tmp_path / "staged"
    site = "/opt/mlflow-env/lib/python3.11/site-packages"
    (root / site.lstrip("/")).mkdir(parents=True)
    # Its argv: -I -S SCRIPT --root ROOT --stdin --emit SITE.
    script = (
        'if echo planted > "$5/planted.pth"; then echo PLANTED >&2; fi\n'
        "printf '/etc/ld.so.preload\\0001\\000x'\n"
    )
    argv = stand_in_base(tmp_path / "rootfs", script)
    base = host_install.Untrusted(tuple(argv), (str(tmp_path / "rootfs"),))
    (tmp_path / "script").mkdir()
    compiler = host_install.Compiler(root, site, (3, 11), b"", base, tmp_path / "script")
    with pytest.raises(StepError, match="no source asked for"), compiler:
        compiler.add([f"{site}/pkg.py"])
    assert not (root / "planted.pth").exists() and not Path("/etc/ld.so.preload").exists()
