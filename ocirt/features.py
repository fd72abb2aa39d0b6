"""The runtime-spec features document: what ocirt was built with."""
from ocirt import OCI_VERSION_MAX, OCI_VERSION_MIN, __version__


def features():
    from ocirt.linux.caps import CAP_NAMES
    from ocirt.linux.namespaces import TYPES
    from ocirt.linux.rootfs import PROPAGATION, _FLAGS, _RECURSIVE
    doc = {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(set(_FLAGS) | set(PROPAGATION) | set(_RECURSIVE) | {"tmpcopyup", "idmap", "ridmap"}),
        "linux": {
            "namespaces": sorted(TYPES),
            "capabilities": list(CAP_NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        "annotations": {"org.opencontainers.ocirt.version": __version__},
        "potentiallyUnsafeConfigAnnotations": ["bundle", "org.systemd.property.", "org.criu.config"],
    }
    try:
        from ocirt.linux import seccomp
        doc["linux"]["seccomp"] = seccomp.features()
    except ImportError:
        doc["linux"]["seccomp"] = {"enabled": False}
    try:
        from ocirt import handlers
        doc["annotations"].update(handlers.features())
    except ImportError:
        pass
    return doc
