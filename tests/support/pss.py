"""The Kubernetes Pod Security Standards' `restricted` profile, as field checks
(kubernetes.io/docs/concepts/security/pod-security-standards, "Restricted", which includes
"Baseline"), over a pod's parts as the engines give them: the pod's securityContext, each
container's, the volumes and the pod's host settings. A container's field wins over the pod's
where both exist (runAsNonRoot, runAsUser, seccompProfile), as the kubelet applies them.

`violations()` returns one line per broken rule, empty when the pod is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Restricted: "Volume Types", the only volume sources allowed.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# Restricted: "Capabilities", the only one that may be added.
ALLOWED_ADDED_CAPABILITIES = {"NET_BIND_SERVICE"}
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}
# Baseline: "Sysctls", the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def container_violations(name: str, ctx: Mapping[str, Any], pod: Mapping[str, Any]) -> list[str]:
    found = []

    def effective(key: str) -> Any:
        return ctx[key] if key in ctx else pod.get(key)

    if ctx.get("privileged"):
        found.append(f"{name}: privileged")
    if ctx.get("allowPrivilegeEscalation") is not False:
        found.append(f"{name}: allowPrivilegeEscalation must be false")
    capabilities = ctx.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        found.append(f"{name}: capabilities.drop must hold ALL")
    added = set(capabilities.get("add") or []) - ALLOWED_ADDED_CAPABILITIES
    if added:
        found.append(f"{name}: capabilities.add {sorted(added)}")
    if effective("runAsNonRoot") is not True:
        found.append(f"{name}: runAsNonRoot must be true")
    if effective("runAsUser") in (0, "0"):
        found.append(f"{name}: runAsUser 0")
    seccomp = (effective("seccompProfile") or {}).get("type")
    if seccomp not in SECCOMP_ALLOWED:
        found.append(f"{name}: seccompProfile.type {seccomp!r} (RuntimeDefault or Localhost)")
    if ctx.get("procMount", "Default") != "Default":
        found.append(f"{name}: procMount {ctx['procMount']}")
    selinux = (ctx.get("seLinuxOptions") or {}).get("type", "")
    if selinux not in SELINUX_TYPES:
        found.append(f"{name}: seLinuxOptions.type {selinux}")
    if (ctx.get("windowsOptions") or {}).get("hostProcess"):
        found.append(f"{name}: windowsOptions.hostProcess")
    return found


def violations(
    pod_context: Mapping[str, Any],
    containers: Iterable[tuple[str, Mapping[str, Any]]],
    volumes: Iterable[Mapping[str, Any]] = (),
    pod_spec: Mapping[str, Any] | None = None,
) -> list[str]:
    """Rules broken by a pod: `pod_context` its securityContext, `containers` (name, container
    securityContext) pairs, `volumes` its volumes, `pod_spec` its other fields (hostNetwork...)."""
    found = []
    pod_spec = pod_spec or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            found.append(f"pod: {key}")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"pod: sysctl {sysctl.get('name')}")
    if pod_context.get("runAsUser") in (0, "0"):
        found.append("pod: runAsUser 0")
    for volume in volumes:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume.get('name')}: {sorted(kinds - ALLOWED_VOLUMES)}")
    for name, ctx in containers:
        found += container_violations(name, ctx, pod_context)
    return found
