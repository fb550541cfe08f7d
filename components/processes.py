"""Run an engine's command (buildah, podman, docker, Kaniko, uv, pip, an install script) with its
log on this process's stderr and its last lines kept for the error message.

stdout carries a step's outputs only (the image reference, the model URL): whatever a command
prints, on either stream, is a log line and goes to stderr, unless the caller captures its
stdout as an answer (a digest, a container name). Each line passes through a mask on its way
out (an installer that echoes an index URL must not print the token in it). The last `TAIL`
lines are kept, masked, so that a failure names what the engine said, even where the log
itself is never seen (a pipeline UI that shows the error line, a caller that kept stderr
quiet) or a command was run `quiet` (its log kept for the error only).
"""

from __future__ import annotations

import collections
import os
import select
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TAIL = 25  # log lines kept for an error message
LINE = 400  # characters of one kept line shown in an error message


@dataclass
class Finished:
    """A command that ran: its exit status, its stdout when captured (else ""), and the last
    `TAIL` lines of its log (stderr, and stdout when not captured), masked."""

    returncode: int
    stdout: str = ""
    tail: list[str] = field(default_factory=list)

    def said(self) -> str:
        """The tail for an error message: one indented line each, long lines cut to `LINE`
        characters; "(it printed nothing)" when the log was empty."""
        lines = [line.rstrip() for line in self.tail if line.strip()]
        if not lines:
            return "(it printed nothing)"
        cut = [line if len(line) <= LINE else line[: LINE - 3] + "..." for line in lines]
        return "\n".join("    " + line for line in cut)


def wait_exit(process: subprocess.Popen, timeout: float) -> int:
    """`process.wait(timeout)`, woken by the exit itself: its exit status, or
    subprocess.TimeoutExpired after `timeout` seconds (the process left running). CPython's
    Popen.wait with a timeout polls, sleeping up to 50 ms between looks (3.11's `_wait`),
    which every build's bytecode compile paid at its end; a Linux pidfd (5.3+,
    `os.pidfd_open`) is readable once the process has exited. Without one (another kernel,
    or a process already waited for), Popen.wait."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        return process.wait(timeout)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(pidfd)
    return process.wait()


def failure(what: str, done: Finished, after: str = "", running: str = "") -> str:
    """`<what> failed (exit N)[ running `<running>`]; it said:` and the tail of its log, then
    `after` (what to do, or what was not written)."""
    doing = f" running `{running}`" if running else ""
    message = f"{what} failed (exit {done.returncode}){doing}; it said:\n{done.said()}"
    return f"{message}\n{after}" if after else message


def run_logged(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdin: IO | int | None = None,
    capture_stdout: bool = False,
    masked: Sequence[str] = (),
    quiet: bool = False,
) -> Finished:
    """Run `argv` to its end. Its log (stderr, and stdout unless `capture_stdout`) is copied
    line by line to `sys.stderr` (nothing when `quiet`), each `masked` value replaced by ***,
    and its last `TAIL` lines kept. Raises what `subprocess.Popen` raises (FileNotFoundError
    for a program that is not installed)."""
    process = subprocess.Popen(
        [str(arg) for arg in argv],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    secrets = sorted((value for value in masked if value), key=len, reverse=True)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL)
    answer: list[str] = []
    sink = None if quiet else sys.stderr
    lock = threading.Lock()

    def copy(stream: IO[str], keep: list[str] | None) -> None:
        for line in stream:
            for value in secrets:
                line = line.replace(value, "***")
            if keep is not None:
                keep.append(line)
                continue
            with lock:
                tail.append(line)
                if sink is not None:
                    sink.write(line)
                    sink.flush()
        stream.close()

    assert process.stdout is not None and process.stderr is not None
    relays = [
        threading.Thread(target=copy, args=(process.stdout, answer if capture_stdout else None)),
        threading.Thread(target=copy, args=(process.stderr, None)),
    ]
    for thread in relays:
        thread.start()
    for thread in relays:
        thread.join()
    return Finished(process.wait(), "".join(answer), list(tail))
