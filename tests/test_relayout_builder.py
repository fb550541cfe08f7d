"""scripts/relayout-builder on a small real git repository laid out as the builder was: the
moves, every form of reference it rewrites, a second run that changes nothing, a module it was
not told about left alone, and a dirty tree refused with nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "relayout-builder"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
}

FILES = {
    "components/__init__.py": "",
    "components/problems.py": "class StepError(Exception):\n    pass\n",
    "components/builder/__init__.py": '"""Builder."""\n',
    "components/builder/build.py": (
        "from ..problems import StepError\n"
        "from . import engines, registry\n"
        "from . import requirements as reqs\n"
        "from .plan import InstallPlan\n"
        "from .pull import fetch\n"
        "\n"
        "\n"
        "def layered():\n"
        "    from .layered.cache import Cache\n"
        "\n"
        "    return Cache, StepError, engines, registry, reqs, InstallPlan, fetch\n"
    ),
    "components/builder/step.py": "NAME = 'builder'\n",
    "components/builder/pull.py": "from .registry import Client as fetch\n",
    "components/builder/plan.py": (
        "from importlib import resources\n"
        "\n"
        "\n"
        "class InstallPlan:\n"
        "    pass\n"
        "\n"
        "\n"
        "def recipe_file(name: str) -> bytes:\n"
        '    return (resources.files(__package__) / "recipe_files" / name).read_bytes()\n'
    ),
    "components/builder/requirements.py": "LINES = ()\n",
    "components/builder/engines.py": "ENGINES = ()\n",
    "components/builder/grammar.py": "",
    "components/builder/registry.py": "import requests\n\n\nclass Client:\n    pass\n",
    "components/builder/layered/__init__.py": "",
    "components/builder/layered/cache.py": (
        "from ...problems import StepError\n"
        "from ..registry import Client\n"
        "from .tar import write\n"
        "\n"
        "Cache = (StepError, Client, write)\n"
    ),
    "components/builder/layered/tar.py": "def write():\n    pass\n",
    "components/builder/recipe_files/install.sh": "#!/bin/sh\n",
    "components/launcher/__init__.py": "",
    "components/launcher/run.py": (
        "# The plan of the codeset, as the builder makes it "
        "(components/builder/plan.py), read here too\n"
        "from ..builder.plan import InstallPlan\n"
    ),
    "mlflow_steps/__init__.py": "",
    "mlflow_steps/cli.py": (
        "from mlflow_steps.components.builder import build as builder\n"
        "from mlflow_steps.components.builder.registry import Client\n"
        "import mlflow_steps.components.builder.layered.tar\n"
    ),
    "tests/__init__.py": "",
    "tests/components/__init__.py": "",
    "tests/components/builder/__init__.py": "",
    "tests/components/builder/test_registry.py": (
        "from pathlib import Path\n"
        "\n"
        'CASES = Path(__file__).resolve().parents[2] / "cases"\n'
        'TARGET = "mlflow_steps.components.builder.registry.requests"\n'
    ),
    "tests/components/builder/test_locks.py": (
        "from tests.components.builder import test_registry\n"
    ),
    "tests/components/builder/test_build_e2e.py": "",
    "docs/layout.md": (
        "See `components/builder/registry.py`, `components/builder/layered/`,\n"
        "`tests/components/builder/test_registry.py` and builder/plan.py.\n"
        "\n"
        "```python\n"
        "from mlflow_steps.components.builder import grammar, step\n"
        "```\n"
    ),
    "pyproject.toml": '[x]\n"components/builder/recipe_files/*" = ["UP"]\n',
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def relayout(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=repo, capture_output=True, text=True
    )


def test_relayout_moves_rewrites_and_is_idempotent(tmp_path):
    repo = tmp_path / "repo"
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "old layout")

    (repo / "components/builder/engines.py").write_text("ENGINES = ('dirty',)\n")
    dirty = relayout(repo)
    assert dirty.returncode == 1 and "dirty" in dirty.stderr
    assert (repo / "components/builder/registry.py").exists()
    git(repo, "checkout", "--", ".")

    done = relayout(repo)
    assert done.returncode == 0, done.stderr
    assert "components/builder/pull.py: not in the mapping" in done.stdout
    assert "not rewritten: 'builder/plan'" in done.stdout
    b = repo / "components" / "builder"
    assert sorted(p.name for p in b.glob("*.py")) == [
        "__init__.py",
        "build.py",
        "pull.py",
        "step.py",
    ]
    for moved in ("oci/registry.py", "planning/plan.py", "backends/engines.py",
                  "reading/requirements.py", "backends/layered/cache.py",
                  "backends/recipe_files/install.sh", "oci/__init__.py"):  # fmt: skip
        assert (b / moved).is_file(), moved

    build = (b / "build.py").read_text()
    assert "from .backends import engines\n" in build
    assert "from .oci import registry\n" in build
    assert "from .reading import requirements as reqs\n" in build
    assert "from .planning.plan import InstallPlan\n" in build
    assert "from .pull import fetch\n" in build  # an unmapped module: left alone
    assert "    from .backends.layered.cache import Cache\n" in build
    assert (b / "pull.py").read_text() == "from .oci.registry import Client as fetch\n"
    cache = (b / "backends/layered/cache.py").read_text()
    assert "from ....problems import StepError\n" in cache
    assert "from ...oci.registry import Client\n" in cache
    assert "from .tar import write\n" in cache
    plan = (b / "planning/plan.py").read_text()
    assert 'files("mlflow_steps.components.builder.backends.recipe_files") / name' in plan
    run = (repo / "components/launcher/run.py").read_text()
    assert run.endswith("\nfrom ..builder.planning.plan import InstallPlan\n")
    assert "(components/builder/planning/plan.py)" in run  # the comment, wrapped
    assert max(len(line) for line in run.splitlines()) <= 100
    cli = (repo / "mlflow_steps/cli.py").read_text()
    assert "from mlflow_steps.components.builder.oci.registry import Client\n" in cli
    assert "import mlflow_steps.components.builder.backends.layered.tar\n" in cli
    assert "from mlflow_steps.components.builder import build as builder\n" in cli

    t = repo / "tests" / "components" / "builder"
    test = (t / "oci/test_registry.py").read_text()
    assert 'parents[3] / "cases"' in test
    assert '"mlflow_steps.components.builder.oci.registry.requests"' in test
    assert (t / "oci/__init__.py").read_text() == ""
    assert (t / "test_build_e2e.py").exists()  # named after no module: stays
    locks = (t / "planning/test_locks.py").read_text()
    assert locks == "from tests.components.builder.oci import test_registry\n"
    docs = (repo / "docs/layout.md").read_text()
    assert "`components/builder/oci/registry.py`" in docs
    assert "`components/builder/backends/layered/`" in docs
    assert "`tests/components/builder/oci/test_registry.py`" in docs
    assert "from mlflow_steps.components.builder import step\n" in docs
    assert "from mlflow_steps.components.builder.reading import grammar\n" in docs
    assert '"components/builder/backends/recipe_files/*"' in (repo / "pyproject.toml").read_text()
    for path in [*b.rglob("*.py"), *(repo / "mlflow_steps").rglob("*.py")]:
        compile(path.read_text(), str(path), "exec")

    git(repo, "commit", "-qm", "rooms")
    again = relayout(repo)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert git(repo, "status", "--porcelain") == ""

    # A module placed on the command line, and an old import merged in later.
    (b / "late.py").write_text("from .registry import Client\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a late module with an old import")
    placed = relayout(repo, "--place", "pull=oci")
    assert placed.returncode == 0, placed.stderr
    assert (b / "oci/pull.py").read_text() == "from .registry import Client as fetch\n"
    assert "from .oci.pull import fetch\n" in (b / "build.py").read_text()
    assert (b / "late.py").read_text() == "from .oci.registry import Client\n"
