"""The run as `mlflow run` records it, and the image it ran in.

The step creates the run itself (so its id is known whatever happens next), with the tags and
parameters MLflow 3.17.2's `mlflow run` writes: `mlflow/projects/utils.py` `_create_run` (user,
source name and type, entry point, git commit and repository URL, every parameter as
`EntryPoint.compute_parameters` gives it, undeclared ones included) and
`mlflow/projects/__init__.py` `_run` (`mlflow.project.backend`: local). The git facts are read
from the checkout's files, so an image without a git executable records them too.

`mlflow.project.env` is what `mlflow run` records with its default environment manager for the
project's kind (`mlflow/projects/backend/local.py`: conda for a conda environment, virtualenv
for python_env or none, docker for docker_env): the image holds that environment, built ahead.
(`mlflow run --env-manager local` records no `mlflow.project.env`.)

The environment image is named by the tags `mlflow_steps.image` and `mlflow_steps.image.digest`
(the reference from MLFLOW_STEPS_IMAGE; the digest from the `image_digest` input, else
MLFLOW_STEPS_IMAGE_DIGEST, else the reference's `@sha256:` part), on the run and on every
model the run logged (MLflow 3's logged models).
"""

import getpass
import os
import re

IMAGE_TAG = "mlflow_steps.image"
IMAGE_DIGEST_TAG = "mlflow_steps.image.digest"
IMAGE_ENV = "MLFLOW_STEPS_IMAGE"
IMAGE_DIGEST_ENV = "MLFLOW_STEPS_IMAGE_DIGEST"
# mlflow/projects/backend/local.py `_env_type_to_env_manager`, by MLflow's env_type values.
ENV_MANAGERS = {"conda_env": "conda", "python_env": "virtualenv", "docker_env": "docker"}


def git_dir(path):
    """(the .git folder, the working tree) of the checkout holding `path`, or (None, None);
    searches parent folders as MLflow's `Repo(path, search_parent_directories=True)`."""
    current = os.path.abspath(path)
    while True:
        candidate = os.path.join(current, ".git")
        if os.path.isdir(candidate):
            return candidate, current
        if os.path.isfile(candidate):  # a worktree or submodule: `gitdir: PATH`
            with open(candidate) as handle:
                text = handle.read().strip()
            if text.startswith("gitdir:"):
                found = text[len("gitdir:") :].strip()
                return os.path.normpath(os.path.join(current, found)), current
        parent = os.path.dirname(current)
        if parent == current:
            return None, None
        current = parent


def read_ref(git, ref):
    """The commit a ref names, from its file or packed-refs; None if not found."""
    common = git
    commondir = os.path.join(git, "commondir")
    if os.path.isfile(commondir):
        with open(commondir) as handle:
            common = os.path.normpath(os.path.join(git, handle.read().strip()))
    for folder in (git, common):
        path = os.path.join(folder, ref)
        if os.path.isfile(path):
            with open(path) as handle:
                return handle.read().strip() or None
    packed = os.path.join(common, "packed-refs")
    if os.path.isfile(packed):
        with open(packed) as handle:
            for line in handle:
                parts = line.strip().split(" ")
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    return None


def git_commit(git):
    """HEAD's commit (MLflow: `git_utils.get_git_commit`, `repo.head.commit.hexsha`)."""
    try:
        with open(os.path.join(git, "HEAD")) as handle:
            head = handle.read().strip()
    except OSError:
        return None
    if head.startswith("ref:"):
        head = read_ref(git, head[4:].strip())
    return head if head and re.match(r"^[0-9a-f]{40}([0-9a-f]{24})?$", head) else None


def git_remote_url(git):
    """The first remote's URL with any credentials removed (MLflow: `get_git_repo_url`, which
    takes `next(remote.url for remote in repo.remotes)` and `_strip_credentials_from_url`)."""
    config = os.path.join(git, "config")
    commondir = os.path.join(git, "commondir")
    if os.path.isfile(commondir):
        with open(commondir) as handle:
            config = os.path.join(
                os.path.normpath(os.path.join(git, handle.read().strip())), "config"
            )
    try:
        with open(config) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    in_remote = False
    for line in lines:
        text = line.strip()
        if text.startswith("["):
            in_remote = bool(re.match(r'^\[remote\s+"[^"]*"\]$', text))
        elif in_remote and re.match(r"^url\s*=", text):
            return strip_credentials(text.split("=", 1)[1].strip())
    return None


def strip_credentials(url):
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", url)


def source_name(project_dir, worktree):
    """`file://<worktree>#<subfolder>` in a checkout, else the folder (MLflow:
    `_get_git_url_if_present(_expand_uri(uri))`)."""
    folder = os.path.abspath(project_dir)
    if worktree is None:
        return folder
    relative = folder.replace(worktree, "", 1).lstrip("/")
    return "file://" + worktree + ("#" + relative if relative else "")


def user():
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for the container's uid, no USER/LOGNAME
        return "unknown"


def run_tags(project_dir, entry_point, env_type):
    """The tags `mlflow run` (MLflow 3.17.2, local backend) sets on a run it creates."""
    git, worktree = git_dir(project_dir)
    tags = {
        "mlflow.user": user(),
        "mlflow.source.name": source_name(project_dir, worktree),
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": entry_point,
        "mlflow.project.backend": "local",
    }
    if git is not None:
        commit = git_commit(git)
        if commit:
            tags["mlflow.source.git.commit"] = commit
        url = git_remote_url(git)
        if url:
            tags["mlflow.source.git.repoURL"] = url
    manager = ENV_MANAGERS.get(str(env_type or "python_env"))
    if manager:
        tags["mlflow.project.env"] = manager
    return tags


def image_tags(environ, digest=""):
    """{IMAGE_TAG: reference, IMAGE_DIGEST_TAG: sha256:...}, for what is known: `digest` (the
    step's image_digest input), else MLFLOW_STEPS_IMAGE_DIGEST, else the reference's
    `@sha256:...` part."""
    reference = environ.get(IMAGE_ENV, "").strip()
    digest = (digest or environ.get(IMAGE_DIGEST_ENV, "")).strip()
    if not digest and "@" in reference:
        digest = reference.rpartition("@")[2]
    tags = {}
    if reference:
        tags[IMAGE_TAG] = reference
    if digest:
        tags[IMAGE_DIGEST_TAG] = digest
    return tags


def logged_parameters(loaded, entry_point_name, parameters):
    """[(key, value)] as `_create_run` logs them: `compute_parameters(parameters, None)` of
    the entry point of MLflow's own project object `loaded` (defaults filled in, values
    shell-quoted as that release does, undeclared parameters after the declared ones)."""
    entry = loaded.get_entry_point(entry_point_name)
    final, extra = entry.compute_parameters(parameters, None)
    return list(final.items()) + list(extra.items())


def create_run(client, experiment_id, tags):
    return client.create_run(experiment_id, tags=tags)


def record_parameters(client, run_id, items):
    from mlflow.entities import Param

    params = [Param(str(k), str(v)) for k, v in items]
    for start in range(0, len(params), 100):  # MLflow's log_batch limit: 100 params a call
        client.log_batch(run_id, params=params[start : start + 100])


def fail_run(client, run_id):
    """End the run FAILED unless it already ended (the entry point may have ended it)."""
    try:
        status = client.get_run(run_id).info.status
        if status in ("RUNNING", "SCHEDULED"):
            client.set_terminated(run_id, "FAILED")
    except Exception:
        pass
