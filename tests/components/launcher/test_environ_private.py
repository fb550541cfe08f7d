"""On the local engine, code the codeset brings runs as the user who runs `mlflow-steps`; it
must not read the credentials that process was started with from `/proc/<pid>/environ`
(issue 23, the /proc limit). All real, as uid 65532 (setpriv, no capabilities): the local
engine's two phases (`local_env.run_phases`) against pypiserver with htpasswd, the index
credentials in MLFLOW_STEPS_INDEX_NETRC of the process's environment, and a path requirement
whose setup.py, run in the install phase, walks up its ancestors reading each one's environ."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlflow_steps.components.builder.planning.plan import recipe_file
from mlflow_steps.components.subprocess_env import keep_environ_private
from tests.conftest import INDEX_USERS
from tests.support.require import require_root
from tests.support.unprivileged import USER, Unprivileged

# Run in the install phase: every ancestor's environ, read or refused.
SPY = """
import json, os
found = {}
pid = os.getppid()
while pid > 1:
    try:
        with open("/proc/%d/environ" % pid, "rb") as handle:
            found[pid] = "read", SECRET.encode() in handle.read()
    except OSError as exc:
        found[pid] = "refused", exc.errno
    with open("/proc/%d/stat" % pid) as handle:
        pid = int(handle.read().rsplit(")", 1)[1].split()[1])
with open(MARKER, "w") as out:
    json.dump({"uid": os.getuid(), "found": found}, out)
from setuptools import setup
setup(name="spy", version="0.1", py_modules=[])
"""

# The mlflow-steps side, as uid 65532: the local engine's phases, its pid written first.
DRIVER = """
import os, sys
from pathlib import Path
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.launcher.local_env import run_phases

staging, work, index = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
(work / "driver.pid").write_text(str(os.getpid()))
done = run_phases(staging, BuildOptions(pip_index_url=index), sys.executable,
                  str(work / "runtime"), str(work / "venv"), "--compile-bytecode",
                  ["requirements.txt"], home=str(work / "home"))
sys.stderr.write(done.said() if hasattr(done, "said") else "")
sys.exit(done.returncode)
"""


@pytest.fixture(scope="module")
def unprivileged(package_index):
    user = Unprivileged(package_index.extra["url"])
    yield user
    user.remove()


def staged(user: Unprivileged, marker: Path) -> Path:
    password = INDEX_USERS["alice"]
    staging = user.work / "staging"  # the install phase removes it at its end
    staging.mkdir()
    for name in ("download-python-env.sh", "fetch-sdists.py", "install-python-env.sh",
                 "index-settings.sh", "compile-bytecode.py", "check-libraries.py"):  # fmt: skip
        (staging / name).write_bytes(recipe_file(name))
    spy = staging / "codeset" / "spy"
    spy.mkdir(parents=True)
    (spy / "setup.py").write_text(f"SECRET = {password!r}\nMARKER = {str(marker)!r}\n" + SPY)
    (staging / "requirements.txt").write_text("six==1.17.0\n./codeset/spy\n")
    (user.root / "driver.py").write_text(DRIVER)
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(staging)], check=True)
    subprocess.run(["chmod", "a+r", str(user.root / "driver.py")], check=True)
    return staging


@pytest.mark.e2e
def test_the_install_phase_cannot_read_the_local_engines_environ(unprivileged, auth_index):
    """On main, the install phase's setup.py (same uid) read MLFLOW_STEPS_INDEX_NETRC, password
    included, from /proc/<mlflow-steps pid>/environ; now that process is non-dumpable and the
    read is refused (EACCES), while the phases still build the path requirement."""
    user = unprivileged
    marker = user.work / "spied.json"
    staging = staged(user, marker)
    host = auth_index.host.partition(":")[0]
    netrc = f"machine {host} login alice password {INDEX_USERS['alice']}"
    env = {"PATH": f"{user.path}:/usr/bin:/bin", "HOME": str(user.home),
           "PYTHONPATH": str(user.pkg), "LANG": "C.UTF-8",
           "MLFLOW_STEPS_INDEX_NETRC": netrc}  # fmt: skip
    setpriv = [shutil.which("setpriv") or "setpriv", f"--reuid={USER}", f"--regid={USER}",
               "--clear-groups", "--no-new-privs"]  # fmt: skip
    done = subprocess.run(
        [*setpriv, str(user.venv / "bin" / "python"), str(user.root / "driver.py"),
         str(staging), str(user.work), auth_index.extra["url"]],
        capture_output=True, text=True, env=env, cwd=user.work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert INDEX_USERS["alice"] not in done.stdout + done.stderr
    spied = json.loads(marker.read_text())
    assert spied["uid"] == USER
    driver = (user.work / "driver.pid").read_text()
    found = spied["found"]
    assert driver in found, found  # the spy reached the mlflow-steps process
    assert found[driver][0] == "refused", found
    assert not any(how == "read" and leaked for how, leaked in found.values()), found


def test_root_reads_a_non_dumpable_processs_environ_as_documented(tmp_path):
    """Root holds CAP_SYS_PTRACE: the flag keeps other users' processes out, not root's
    (docs/threat-model.md). A child of a non-dumpable process, run as root, reads its
    environ."""
    require_root()
    script = tmp_path / "child.py"
    script.write_text(
        "import os, subprocess, sys\n"
        "from mlflow_steps.components.subprocess_env import keep_environ_private\n"
        "assert keep_environ_private()\n"
        "read = subprocess.run([sys.executable, '-c', 'import os; print(open(\"/proc/%d/environ\""
        ' % os.getppid(), "rb").read().count(b"ROOT_SEES_THIS"))\'], capture_output=True,'
        " text=True)\n"
        "print(read.stdout.strip(), read.returncode)\n"
    )
    done = subprocess.run(["python3", str(script)], capture_output=True, text=True,
                          env={**os.environ, "MARK": "ROOT_SEES_THIS"})  # fmt: skip
    assert done.stdout.split() == ["1", "0"], done.stderr


def test_the_flag_is_set_on_linux():
    if os.uname().sysname != "Linux":
        pytest.skip("prctl is Linux's")
    child = subprocess.run(
        ["python3", "-c", "from mlflow_steps.components.subprocess_env import "
         "keep_environ_private as k; import sys; sys.exit(0 if k() and k() else 1)"],
    )  # fmt: skip
    assert child.returncode == 0
    assert callable(keep_environ_private)
