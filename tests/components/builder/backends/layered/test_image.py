"""The config written on the base's: what the single-layer recipe's Dockerfile gives."""

from __future__ import annotations

import json

import pytest

from mlflow_steps.components.builder.backends.layered.image import (
    DEFAULT_PATH,
    Reference,
    document,
    image_config,
)
from mlflow_steps.components.builder.backends.recipe import VENV
from mlflow_steps.components.problems import StepError

BASE = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"], "Cmd": ["python3"],
               "Labels": {"maintainer": "base"}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
    "history": [{"created_by": "base layer"}],
}  # fmt: skip


def config(base=BASE, timestamp=0) -> dict:
    env = {"PATH": f"{VENV}/bin:$PATH", "VIRTUAL_ENV": VENV}
    text = image_config(base, ["sha256:a", "sha256:b"], ["venv", "six 1.17.0"], env,
                        {"io.github.mlflow-steps.layering": "per-package"}, timestamp)  # fmt: skip
    return json.loads(text)


def test_config_is_the_recipes():
    found = config()
    assert found["config"]["Env"] == [
        f"PATH={VENV}/bin:/usr/local/bin:/usr/bin",
        "LANG=C.UTF-8",
        f"VIRTUAL_ENV={VENV}",
    ]
    assert found["config"]["Entrypoint"] == ["python", "-m", "mlflow_steps_runtime"]
    assert "Cmd" not in found["config"]  # a Dockerfile ENTRYPOINT drops the base's CMD
    assert found["config"]["WorkingDir"] == "/project"
    assert found["config"]["Labels"] == {
        "maintainer": "base",
        "io.github.mlflow-steps.layering": "per-package",
    }
    assert found["rootfs"]["diff_ids"] == ["sha256:base", "sha256:a", "sha256:b"]
    assert [h["created_by"] for h in found["history"]] == [
        "base layer",
        "mlflow-steps: venv",
        "mlflow-steps: six 1.17.0",
    ]
    assert found["created"] == "1970-01-01T00:00:00Z"
    assert BASE["config"]["Cmd"] == ["python3"]  # the base's own config is left alone


def test_a_base_without_path_gets_the_default_one():
    bare = {**BASE, "config": {}}
    assert config(bare)["config"]["Env"] == [
        f"PATH={VENV}/bin:{DEFAULT_PATH}",
        f"VIRTUAL_ENV={VENV}",
    ]


def test_timestamp_is_source_date_epoch():
    assert config(timestamp=1700000000)["created"] == "2023-11-14T22:13:20Z"


@pytest.mark.parametrize(
    "image, expected",
    [
        ("127.0.0.1:5000/base/debian:bookworm", ("127.0.0.1:5000", "base/debian", "bookworm")),
        ("python:3.11", ("registry-1.docker.io", "library/python", "3.11")),
        ("ghcr.io/o/p", ("ghcr.io", "o/p", "latest")),
        ("localhost/x@sha256:ab", ("localhost", "x", "sha256:ab")),
        ("user/img:1", ("registry-1.docker.io", "user/img", "1")),
    ],
)
def test_references_are_read_as_docker_reads_them(image, expected):
    ref = Reference.parse(image)
    assert (ref.host, ref.repository, ref.reference) == expected


@pytest.mark.parametrize(
    "served, said",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"manifests": "abc"}', "an index entry is not"),
        (b'{"manifests": ["x"]}', "an index entry is not"),
        (b'{"manifests": [{"digest": "sha256:1", "platform": "linux/amd64"}]}', "index entry"),
        (b'{"manifests": [{"digest": "d", "platform": {"os": 5}}]}', "an index entry is not"),
        (b'{"layers": [{"mediaType": "m", "digest": "d", "size": "-5; rm"}]}', "a layer is not"),
        (b'{"layers": [{"mediaType": "m", "digest": "d", "size": -5}]}', "a layer is not"),
        (b'{"layers": [], "config": "c"}', "its config is not an object"),
    ],
)
def test_a_malformed_manifest_or_index_is_a_clear_error(served, said):
    """A registry's answer is not trusted to be well formed: each shape the builder reads is
    checked, and a wrong one is a StepError naming the image, never a traceback (found by this
    round's attack review: AttributeError, KeyError, TypeError, an assert)."""
    with pytest.raises(StepError, match=rf"base image r: x: malformed .*{said}|not JSON"):
        document(served, "base image r: x")
    good = b'{"manifests": [{"digest": "d", "platform": {"os": "linux", "os.features": []}}]}'
    assert document(good, "w")["manifests"][0]["digest"] == "d"
