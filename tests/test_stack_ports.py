"""The local stack's ports (mlflow_steps.stack, .services), with real sockets: the defaults lie
outside the kernel's ephemeral range, a taken port is named before anything starts, and a server
that exits while it is awaited fails at once with its log (CI once waited 20 s for a registry
that had died on `bind: address already in use`, then printed only that)."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from mlflow_steps import stack
from mlflow_steps.stack import services


def test_the_default_ports_lie_below_the_ephemeral_range():
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    inside = {name: p for name, p in stack.DEFAULT_PORTS.items() if low <= p <= high}
    assert inside == {}, f"a connection's local end can take these ({low}-{high}): {inside}"


@pytest.fixture
def listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_is_named_with_its_flag_and_nothing_starts(tmp_path, listener):
    ports = {"registry": services.free_port(), "index": listener, "tracking": services.free_port()}
    with pytest.raises(RuntimeError) as raised, stack.running(tmp_path, ports, log=print):
        pytest.fail("the stack started on a taken port")
    message = str(raised.value)
    assert f"127.0.0.1:{listener}" in message and "--index-port" in message
    assert list(tmp_path.iterdir()) == []  # no registry started (its folder is made first)


def test_port_for_refuses_a_taken_port_and_gives_a_free_one(listener):
    with pytest.raises(services.PortInUse) as raised:
        services.port_for(listener)
    assert raised.value.port == listener
    free = services.port_for(None)
    assert services.port_for(free) == free


def test_a_server_that_exits_fails_the_wait_at_once_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    said = "listen tcp 127.0.0.1:1: bind: address already in use"
    process = services.start([sys.executable, "-c", f"print({said!r}); raise SystemExit(3)"], log)
    service = services.Service(f"127.0.0.1:{services.free_port()}", process, log)
    began = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        services.serving(service, f"http://{service.host}/", timeout=60)
    assert time.monotonic() - began < 30  # not the 60 s timeout
    assert "exited (code 3)" in str(raised.value) and said in str(raised.value)
