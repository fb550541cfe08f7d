"""Parsing of mlflow_entrypoint_args, booleans and the experiment default (stdlib only)."""

from __future__ import annotations

import pytest

from mlflow_steps.components.runtime.inputs import (
    InputError,
    default_experiment,
    parse_bool,
    parse_entrypoint_args,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("epochs=2,batch_size=64", {"epochs": "2", "batch_size": "64"}),
        ("epochs=2 batch_size=64", {"epochs": "2", "batch_size": "64"}),
        ("epochs=2, batch_size=64", {"epochs": "2", "batch_size": "64"}),
        ("  epochs=2 ,,  batch_size=64 ", {"epochs": "2", "batch_size": "64"}),
        ('msg="hello, world",n=1', {"msg": "hello, world", "n": "1"}),
        ("msg='a b' n=1", {"msg": "a b", "n": "1"}),
        ("url=http://h/p?a=b", {"url": "http://h/p?a=b"}),
        ("empty=", {"empty": ""}),
        ("", {}),
    ],
)
def test_entrypoint_args(text, expected):
    assert parse_entrypoint_args(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("=1", "is not name=value"),
        ("a==", "has `==`"),
        ("epochs", "is not name=value"),
        ("a=1,a=2", "a is given twice"),
        ("msg='unclosed", "close the quote"),
    ],
)
def test_malformed_entrypoint_args(text, fragment):
    with pytest.raises(InputError, match=fragment.replace("`", ".")):
        parse_entrypoint_args(text)


def test_booleans():
    assert parse_bool("True", "verbose") is True and parse_bool("", "verbose") is False
    with pytest.raises(InputError, match="not a boolean"):
        parse_bool("maybe", "verbose")


def test_experiment_default_prefers_fuseml_then_mlproject_then_folder(tmp_path):
    project = tmp_path / "my-codeset"
    project.mkdir()
    assert default_experiment(str(project), None) == "my-codeset"
    assert default_experiment(str(project), "from_mlproject") == "from_mlproject"
    (project / ".fuseml").mkdir()
    (project / ".fuseml" / "_org").write_text("acme\n")
    assert default_experiment(str(project), "from_mlproject") == "from_mlproject"
    (project / ".fuseml" / "_project").write_text("mnist\n")
    assert default_experiment(str(project), "from_mlproject") == "acme.mnist"
