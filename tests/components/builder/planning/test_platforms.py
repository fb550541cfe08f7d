"""The `platforms` input: its grammar, engines that would need emulation refused at once (before
any registry request), and what it adds to the tag."""

from __future__ import annotations

import os
import platform as host_platform
import sys
from pathlib import Path

import pytest

from mlflow_steps.cli import main
from mlflow_steps.components.builder.backends.layered.base_files import BaseFacts
from mlflow_steps.components.builder.backends.layered.image import BaseImage, Reference
from mlflow_steps.components.builder.backends.layered.platforms import (
    ELF_MACHINES,
    PlatformBuild,
    check_together,
    elf_machine,
)
from mlflow_steps.components.builder.backends.layered.wheels import Pin
from mlflow_steps.components.builder.planning.plan import InstallPlan
from mlflow_steps.components.builder.planning.platforms import (
    MACHINES,
    Platform,
    host,
    parse_platforms,
)
from mlflow_steps.components.builder.planning.tag import environment_tag
from mlflow_steps.components.problems import StepError
from tests.support.services import free_port

MAIN = "entry_points:\n  main:\n    command: python train.py\n"
# A platform that is not this machine's (an engine would need emulation for it).
OTHER = "linux/arm64" if host().architecture != "arm64" else "linux/amd64"


def test_platforms_are_parsed_sorted_and_once():
    assert parse_platforms("") == ()
    assert parse_platforms(" linux/arm64, linux/amd64,linux/arm64 ") == (
        Platform("linux", "amd64"),
        Platform("linux", "arm64"),
    )
    (arm,) = parse_platforms("linux/arm64/v8")
    assert (str(arm), arm.machine) == ("linux/arm64/v8", "aarch64")
    assert arm.matches({"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert not arm.matches({"os": "linux", "architecture": "arm64", "variant": "v7"})
    assert Platform("linux", "arm64").matches({"os": "linux", "architecture": "arm64"})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("arm64", "`arm64` is not os/architecture[/variant]; write e.g. linux/amd64,linux/arm64"),
        ("linux/amd64,", "`` is not os/architecture[/variant]"),
        ("windows/amd64", "`windows/amd64`: only linux images are built"),
        ("linux/sparc", "architecture sparc is not one of amd64, arm64, ppc64le, s390x"),
        ("Linux/AMD64", "is not os/architecture"),
    ],
)
def test_bad_platforms_are_named(text, fragment):
    with pytest.raises(StepError) as raised:
        parse_platforms(text)
    assert fragment in str(raised.value)


def codeset(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "MLproject").write_text(MAIN)
    (root / "requirements.txt").write_text("six\n")
    return root


def test_bad_platforms_input_fails_the_cli_before_anything(tmp_path, capsys):
    out = tmp_path / "out" / "image"
    code = main(["build", str(codeset(tmp_path / "c")), "--platforms", "linux/amd64;linux/arm64",
                 "--registry", f"127.0.0.1:{free_port()}", "--output", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0
    assert "platforms: `linux/amd64;linux/arm64` is not os/architecture[/variant]" in err
    assert not out.exists()


@pytest.mark.parametrize("engine", ["buildah", "podman", "docker", "kaniko"])
def test_an_engine_asked_for_another_cpu_fails_at_once(tmp_path, capsys, engine):
    """No registry listens on the port: the refusal comes before any request."""
    out = tmp_path / "image"
    code = main(["build", str(codeset(tmp_path / "c")), "--engine", engine, "--platforms",
                 f"linux/{host().architecture},{OTHER}", "--registry",
                 f"127.0.0.1:{free_port()}", "--insecure", "--output", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0
    assert f"platforms {OTHER}: the {engine} engine runs commands in the base" in err
    assert "would need emulation" in err and "--engine none" in err
    assert not out.exists()


def test_the_local_run_refuses_another_cpu(tmp_path, capsys):
    code = main(["run", str(codeset(tmp_path / "c")), "--platforms", OTHER])
    err = capsys.readouterr().err
    assert code != 0
    assert "the local engine runs commands in the base" in err and "--engine none" in err


def test_the_tag_adds_platforms_only_when_given():
    plan = InstallPlan(kind="pip", base_image="python:3.11", installer="venv")
    plain = environment_tag(plan, "FROM x", {}, "sha256:" + "1" * 64)
    assert environment_tag(plan, "FROM x", {}, "sha256:" + "1" * 64, ()) == plain
    both = environment_tag(plan, "FROM x", {}, "sha256:" + "1" * 64, ("linux/amd64", "linux/arm64"))
    one = environment_tag(plan, "FROM x", {}, "sha256:" + "1" * 64, ("linux/amd64",))
    assert len({plain, both, one}) == 3


def test_elf_machine_reads_the_header():
    machine = host_platform.machine()
    if machine not in ELF_MACHINES:
        pytest.skip(f"no ELF machine number listed for {machine}")
    assert elf_machine(Path(os.path.realpath(sys.executable))) == ELF_MACHINES[machine]
    assert elf_machine(Path(__file__)) is None


def platform_build(architecture: str, python: str, pins: list[Pin]) -> PlatformBuild:
    machine = MACHINES[architecture]
    facts = BaseFacts(python, machine, "2.36", "/usr/bin/python3.11", frozenset())
    base = BaseImage(Reference("r", "base", "t"), "sha256:" + "0" * 64, [], {})
    return PlatformBuild(Platform("linux", architecture), base, facts, False, "", pins, [], {}, [])


def pin(name: str, version: str, wheel: bool = True) -> Pin:
    return Pin(name, version, "http://i/x.whl" if wheel else None, "a" * 64 if wheel else None,
               None, True)  # fmt: skip


def test_platforms_must_share_one_python_minor_version():
    builds = [platform_build("amd64", "3.11.2", []), platform_build("arm64", "3.12.1", [])]
    with pytest.raises(StepError) as raised:
        check_together(builds, "3.11")
    assert "different Python minor versions (linux/amd64: 3.11.2, linux/arm64: 3.12.1)" in str(
        raised.value
    )


def test_the_lock_must_be_for_the_bases_python():
    with pytest.raises(StepError) as raised:
        check_together([platform_build("arm64", "3.12.1", [])], "3.11")
    assert "the lock was resolved for Python 3.11" in str(raised.value)
    assert "set python_version to 3.12" in str(raised.value)


def test_every_problem_is_named_at_once_and_nothing_pushed():
    amd64 = platform_build("amd64", "3.11.2", [pin("numpy", "2.4.6"), pin("six", "1.17.0")])
    arm64 = platform_build(
        "arm64", "3.11.2", [pin("numpy", "2.4.6", wheel=False), pin("six", "1.16.0")]
    )
    with pytest.raises(StepError) as raised:
        check_together([amd64, arm64], "3.11")
    text = str(raised.value)
    assert text.startswith("platforms: nothing was pushed:")
    assert "numpy 2.4.6 has no wheel for linux/arm64 (Python 3.11.2, aarch64, glibc 2.36)" in text
    assert "six different versions per platform (linux/amd64: 1.17.0, linux/arm64: 1.16.0)" in text
    check_together([amd64], "3.11")  # one platform, every wheel: no problem
