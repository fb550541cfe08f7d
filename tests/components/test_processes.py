"""run_logged: an engine's log goes to stderr (never stdout), masked, and its last lines end
the error of a failure, shown or not. wait_exit: a process's exit status, or a timeout."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlflow_steps.components.processes import TAIL, failure, run_logged, wait_exit


def test_the_log_goes_to_stderr_masked_and_its_tail_is_kept(capfd):
    script = "echo 'out tok3n'; echo 'err tok3n' >&2; exit 3"
    done = run_logged(["sh", "-c", script], masked=["tok3n"])
    printed = capfd.readouterr()
    assert printed.out == ""
    assert sorted(printed.err.splitlines()) == ["err ***", "out ***"]
    assert done.returncode == 3 and sorted(done.tail) == ["err ***\n", "out ***\n"]
    message = failure("the thing", done, "Nothing was written.")
    assert message.startswith("the thing failed (exit 3); it said:\n")
    assert "    err ***" in message and "    out ***" in message
    assert message.endswith("\nNothing was written.") and "tok3n" not in message


def test_quiet_shows_nothing_and_still_keeps_the_last_lines_for_the_error(capfd):
    script = f"for i in $(seq 1 {TAIL + 10}); do echo line $i >&2; done; exit 1"
    done = run_logged(["sh", "-c", script], quiet=True)
    assert capfd.readouterr().err == ""
    assert [line.strip() for line in done.tail] == [f"line {i}" for i in range(11, TAIL + 11)]
    assert failure("it", done, running="sh -c ...").startswith(
        "it failed (exit 1) running `sh -c ...`; it said:\n    line 11\n"
    )


def test_a_captured_stdout_is_the_answer_not_the_log(capfd):
    code = "import sys; print('sha256:abc'); print('progress', file=sys.stderr)"
    done = run_logged([sys.executable, "-c", code], capture_stdout=True)
    assert done.stdout == "sha256:abc\n" and done.tail == ["progress\n"]
    assert capfd.readouterr().err == "progress\n"


def test_a_silent_failure_says_so():
    done = run_logged(["sh", "-c", "exit 7"])
    assert failure("the probe", done) == "the probe failed (exit 7); it said:\n(it printed nothing)"


def test_wait_exit_gives_the_exit_status_or_times_out_leaving_it_running():
    done = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2); exit(3)"])
    assert wait_exit(done, 30) == 3 and done.returncode == 3
    assert wait_exit(done, 30) == 3  # waited for already: no pidfd, Popen's own answer
    slow = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(slow, 0.2)
        assert slow.poll() is None
    finally:
        slow.kill()
        slow.wait()
