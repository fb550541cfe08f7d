"""Every line form of pip's requirements-file format (pip 26.3 `req/req_file.py`), read as pip
reads it: the normal form each becomes, the files it ships, or the error that says what to
write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_steps.components.builder.build import plan
from mlflow_steps.components.builder.planning.options import BuildOptions
from mlflow_steps.components.builder.reading import requirements as reqs
from mlflow_steps.components.builder.reading.codeset import load_codeset
from mlflow_steps.components.problems import StepError

MAIN = "entry_points:\n  main:\n    command: python train.py\n"

# line -> its normal form
FORMS = [
    ("numpy==1.26.4", "numpy==1.26.4"),
    ("Scikit_Learn[B,extra] >=1,<2 ; python_version<'3.12'",
     'scikit-learn[b,extra]<2,>=1; python_version < "3.12"'),
    ("six==1.16 --hash sha256:bb --hash=sha256:aa", "six==1.16 --hash=sha256:aa --hash=sha256:bb"),
    ("pkg -C key=value", "pkg --config-settings=key=value"),
    ("--index-url=http://i/simple", "--index-url http://i/simple"),
    ("-i http://i/simple", "--index-url http://i/simple"),
    ("--pypi-url http://i/simple", "--index-url http://i/simple"),
    ("--extra-index-url http://e/simple", "--extra-index-url http://e/simple"),
    ("--find-links https://host/wheels", "--find-links https://host/wheels"),
    ("--only-binary=:all:", "--only-binary :all:"),
    ("--no-index", "--no-index"),
    ("--pre", "--pre"),
    ("--no-i", "--no-index"),  # optparse's abbreviations
    ("--all-releases :all:", "--all-releases :all:"),
    ("--only-final=a,b", "--only-final a,b"),
    ("--no-require-hashes", "--no-require-hashes"),
    ("--require-hashes", "--require-hashes"),
    ("name @ https://host/name-1.0-py3-none-any.whl ; python_version>'3'",
     'name @ https://host/name-1.0-py3-none-any.whl ; python_version > "3"'),
    ("git+https://host/org/repo@main#egg=My_Pkg", "my-pkg @ git+https://host/org/repo@main"),
    ("git+https://host/org/repo@main#egg=pkg&subdirectory=sub",
     "pkg @ git+https://host/org/repo@main#subdirectory=sub"),
    ("git+https://host/org/repo@v1", "git+https://host/org/repo@v1"),  # pip builds it to name it
    ("https://host/f/pkg-1.0.tar.gz#sha256=abc", "pkg @ https://host/f/pkg-1.0.tar.gz#sha256=abc"),
    ("https://host/f/thing.zip#egg=thing", "thing @ https://host/f/thing.zip"),
    ("./vendor/pkg", "./codeset/vendor/pkg"),
    ("vendor/pkg[Extra] ; sys_platform == 'linux'",
     "./codeset/vendor/pkg[Extra]; sys_platform == 'linux'"),
    ("-f ./vendor", "--find-links ./codeset/vendor"),
]  # fmt: skip

# line -> fragments of its error
REFUSED = [
    ("-e ./vendor/pkg", ["editable install", "write `./vendor/pkg`"]),
    ("-e git+https://host/o/r#egg=foo", ["editable install", "write `foo @ git+https://host/o/r`"]),
    ("pkg @ file:///opt/pkg", ["file: URL", "e.g. ./vendor/pkg"]),
    ("file:///opt/pkg", ["file: URL"]),
    ("-r https://host/req.txt", ["names a URL", "download the file into the codeset"]),
    ("--global-option=x", ["has `--global-option`, which pip 26.3 does not read", "remove it"]),
    ("six --index-url http://i", ["`--index-url` after a requirement", "line of its own"]),
    ("--hash=sha256:aa", ["`--hash` without a requirement"]),
    ("numpy=>1.0", ["is not a valid requirement", "see PEP 508"]),
    ("./missing", ["names ./missing, which does not exist in the codeset"]),
    ("https://host/unnamed", ["write it as `NAME @ https://host/unnamed`"]),
    ("../outside", ["names ../outside, which leads to", "outside the codeset"]),
    ("/etc/hostname", ["names /etc/hostname, which is an absolute path, outside the codeset"]),
    ("-c /etc/hostname", ["is an absolute path, outside the codeset"]),
    ("pkg @ https://host/${PIP_INDEX_URL}",
     ["names an environment variable", "--pip-index-url", "MLFLOW_STEPS_INDEX_NETRC",
      "index Secret"]),
    # pip's options that uv (Python >= 3.8) cannot be given the meaning of (uv_options.py)
    ("--prefer", ["pip's prefer-binary choice", "which uv", "`--only-binary NAME` instead"]),
    ("--use-feature fast-deps", ["the pip feature 'fast-deps'", "remove the line"]),
    ("--all-releases :none:", ["uses :none:", "remove the line"]),
    ("./vendor/pkg -C k=v", ["--config-settings on a requirement without a name", "NAME @ URL"]),
    # only the user lowers TLS for a host (issue 23, F7)
    ("--trusted-host idx.example", ["marks idx.example as a trusted host", "plain HTTP",
                                    "--pip-trusted-host", "Remove the line"]),
]  # fmt: skip


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / "vendor" / "pkg").mkdir(parents=True)
    (tmp_path / "vendor" / "pkg" / "pyproject.toml").write_text("[project]\nname='pkg'\n")
    return tmp_path


def read(root: Path, *lines: str) -> tuple[reqs.Requirements, list[str]]:
    problems: list[str] = []
    reader = reqs.Reader(root, root, problems)
    reader.read_lines(list(enumerate(lines, start=1)), "requirements.txt", root)
    return reader.finish("requirements.txt"), problems


@pytest.mark.parametrize(("line", "normal"), FORMS, ids=[f[0] for f in FORMS])
def test_each_line_form_has_a_normal_form(root, line, normal):
    read_, problems = read(root, line)
    assert problems == []
    assert read_.lines == [normal]


@pytest.mark.parametrize(("line", "fragments"), REFUSED, ids=[r[0] for r in REFUSED])
def test_each_refused_form_says_why_and_quotes_its_line_once(root, line, fragments):
    _, problems = read(root, "six", line)
    assert len(problems) == 1
    assert problems[0].startswith(f"requirements.txt line 2: `{line}` ")
    assert problems[0].count(f"`{line}`") == 1
    for fragment in fragments:
        assert fragment in problems[0]


def test_a_path_requirement_ships_its_files_without_caches(root):
    (root / "vendor" / "pkg" / "__pycache__").mkdir()
    (root / "vendor" / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "vendor" / "pkg" / "mod.py").write_text("X = 1\n")
    read_, _ = read(root, "./vendor/pkg")
    assert sorted(read_.files()) == [
        "codeset/vendor/pkg/mod.py",
        "codeset/vendor/pkg/pyproject.toml",
    ]


def test_a_symlink_inside_a_path_requirement_that_leaves_the_codeset_is_refused(root, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-secret"
    outside.write_text("TOKEN")
    (root / "vendor" / "pkg" / "leak").symlink_to(outside)
    _, problems = read(root, "./vendor/pkg")
    assert (
        len(problems) == 1 and "holds vendor/pkg/leak, which is (or passes through)" in problems[0]
    )
    assert "TOKEN" not in problems[0]


def test_constraints_are_merged_normalised_and_shipped(root):
    (root / "c1.txt").write_text("# pins\nNumPy < 2\n")
    (root / "sub").mkdir()
    (root / "sub" / "c2.txt").write_text("-c ../c1.txt\npandas==2.2.2\n")
    read_, problems = read(root, "numpy", "-c sub/c2.txt", "--constraint=c1.txt")
    assert problems == []
    assert read_.install_lines() == ["-c constraints.txt", "numpy"]
    assert read_.files() == {"constraints.txt": b"numpy<2\npandas==2.2.2\n"}


def test_a_path_in_a_constraints_file_is_refused_as_pip_refuses_it(root):
    (root / "c.txt").write_text("./vendor/pkg\n")
    _, problems = read(root, "-c c.txt")
    assert problems == [
        "c.txt line 1: `./vendor/pkg` is a path in a constraints file; pip allows only named "
        "requirements there (name==version)"
    ]


def test_mlflow_is_found_by_name_in_every_named_form():
    lines = ["./codeset/x", "git+https://h/r", "--pre", "mlflow-skinny @ https://h/m.whl"]
    assert reqs.mentions_mlflow(lines)
    assert not reqs.mentions_mlflow(lines[:3])


def codeset(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "MLproject").write_text(MAIN)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def tag_and_recipe(root: Path):
    the_plan = plan(root, BuildOptions(env_manager="uv"))
    return the_plan.tag, the_plan.recipe


@pytest.mark.parametrize(
    ("env_file", "text"),
    [
        ("requirements.txt", "six\n-c constraints/pins.txt\n./vendor/pkg\n"),
        ("python_env.yaml", "dependencies: [six, -c constraints/pins.txt, ./vendor/pkg]\n"),
        ("conda.yaml", "dependencies:\n  - pip:\n    - six\n    - -c constraints/pins.txt\n"
                       "    - ./vendor/pkg\n"),
    ],
)  # fmt: skip
def test_constraints_and_paths_reach_the_recipe_and_the_tag(tmp_path, env_file, text):
    root = codeset(
        tmp_path / "c",
        {
            env_file: text,
            "constraints/pins.txt": "six==1.16.0\n",
            "vendor/pkg/pyproject.toml": "[project]\nname = 'pkg'\n",
        },
    )
    tag, recipe = tag_and_recipe(root)
    assert recipe.files["mlflow-steps/constraints.txt"] == b"six==1.16.0\n"
    assert "mlflow-steps/codeset/vendor/pkg/pyproject.toml" in recipe.files
    installed = b"".join(v for k, v in recipe.files.items() if k.endswith("requirements.txt"))
    assert b"-c constraints.txt" in installed and b"./codeset/vendor/pkg" in installed
    (root / "constraints/pins.txt").write_text("# pinned\nsix == 1.16.0\n")
    assert tag_and_recipe(root)[0] == tag  # same constraints, same tag
    (root / "constraints/pins.txt").write_text("six==1.17.0\n")
    assert tag_and_recipe(root)[0] != tag
    (root / "constraints/pins.txt").write_text("six==1.16.0\n")
    (root / "vendor/pkg/pyproject.toml").write_text("[project]\nname = 'pkg'\nversion = '2'\n")
    assert tag_and_recipe(root)[0] != tag


def test_conda_pip_list_lines_are_numbered_and_refused_like_a_file(tmp_path):
    root = codeset(
        tmp_path / "c", {"conda.yaml": "dependencies:\n  - pip:\n    - six\n    - -e ./x\n"}
    )
    with pytest.raises(StepError, match=r"conda.yaml pip line 2: `-e ./x` is an editable"):
        load_codeset(root)
