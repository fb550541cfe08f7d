"""Command lines of `mlflow-steps run --image` for docker and podman (no Docker engine here,
and podman cannot run containers on this machine: argv only; buildah runs for real in
test_run_e2e.py)."""

from __future__ import annotations

from pathlib import Path

from mlflow_steps.components.launcher.containers import engine_run_argv
from mlflow_steps.components.launcher.environment import passed_environment, write_env_file


def test_docker_and_podman_argv():
    argv = engine_run_argv(
        "docker", "reg/x:t", Path("/code"), Path("/io"), ["--entrypoint=eval"], insecure=True
    )
    assert argv == [
        "docker",
        "run",
        "--rm",
        "--network=host",
        "-w",
        "/project",
        "-v",
        "/code:/project:ro",
        "-v",
        "/io:/mlflow-steps-io",
        "reg/x:t",
        "/project",
        "--env-file",
        "/mlflow-steps-io/env.json",
        "--output",
        "/mlflow-steps-io/output",
        "--model-uri-output",
        "/mlflow-steps-io/model-uri",
        "--entrypoint=eval",
    ]
    podman = engine_run_argv("podman", "reg/x:t", Path("/c"), Path("/io"), [], insecure=True)
    assert podman[:4] == ["podman", "run", "--rm", "--tls-verify=false"]


def test_secrets_travel_in_a_private_file_not_argv(tmp_path):
    env = {
        "MLFLOW_TRACKING_PASSWORD": "pw",
        "AWS_SECRET_ACCESS_KEY": "sk",
        "HOME": "/root",
        "FUSEML_EPOCHS": "3",
    }
    passed = passed_environment(env)
    assert passed == {
        "MLFLOW_TRACKING_PASSWORD": "pw",
        "AWS_SECRET_ACCESS_KEY": "sk",
        "FUSEML_EPOCHS": "3",
    }
    path = write_env_file(tmp_path, passed)
    assert path.stat().st_mode & 0o777 == 0o600
    argv = engine_run_argv("docker", "i", tmp_path, tmp_path, [], insecure=False)
    assert "pw" not in argv and "sk" not in argv


def test_the_local_entry_point_never_sees_a_credential_of_ours():
    """What `run --engine local` holds back from the entry point's environment."""
    from mlflow_steps.components.launcher.run import held_back

    for name in ("FUSEML_PIP_INDEX_URL", "PIP_INDEX_URL", "UV_INDEX_URL", "NETRC",
                 "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "MLFLOW_STEPS_INDEX_NETRC",
                 "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY"):  # fmt: skip
        assert held_back(name), name
    assert not held_back("PATH") and not held_back("HOME") and not held_back("LANG")
