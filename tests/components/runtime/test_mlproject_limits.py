"""The runtime step reads MLproject with limits before MLflow's loader does (issue 23, item 9),
as the step runs it (`python -m`, host MLflow, a real SQLite store): `run --image` has no
builder in front of it to refuse a hostile codeset."""

from __future__ import annotations

import os
import threading
import time

from tests.components.builder.reading.test_grammar import BOMB
from tests.components.runtime.test_bad_inputs import run_step

MAIN = "name: t\nentry_points:\n  main:\n    command: python -c 'print(1)'\n"


def test_a_yaml_bomb_mlproject_is_refused_fast(tmp_path):
    root = tmp_path / "codeset"
    root.mkdir()
    (root / "MLproject").write_text(MAIN + BOMB.replace("channels: [defaults]\n", ""))
    started = time.monotonic()
    done, output, _ = run_step(root, tmp_path)
    assert done.returncode == 2 and "alias *a" in done.stderr, done.stderr[-2000:]
    assert time.monotonic() - started < 60 and not output.exists()


def test_a_fifo_mlproject_is_refused_not_read(tmp_path):
    root = tmp_path / "codeset"
    root.mkdir()
    os.mkfifo(root / "MLproject")
    result: list = []
    thread = threading.Thread(target=lambda: result.append(run_step(root, tmp_path)), daemon=True)
    thread.start()
    thread.join(120)
    if not result:  # unblock the reader (EOF) so that the step ends, then fail
        os.close(os.open(root / "MLproject", os.O_WRONLY | os.O_NONBLOCK))
    assert result, "the step blocked on the FIFO"
    done, _, _ = result[0]
    assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr[-2000:]
