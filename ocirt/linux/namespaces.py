"""Namespaces: which to create, which to join, and the id maps."""
import os

from ocirt.errors import ConfigError, OcirtError
from ocirt.linux.sys import C

# runtime-spec type -> (clone flag, /proc/<pid>/ns name)
TYPES = {
    "user": (C.CLONE_NEWUSER, "user"),
    "pid": (C.CLONE_NEWPID, "pid"),
    "network": (C.CLONE_NEWNET, "net"),
    "ipc": (C.CLONE_NEWIPC, "ipc"),
    "uts": (C.CLONE_NEWUTS, "uts"),
    "mount": (C.CLONE_NEWNS, "mnt"),
    "cgroup": (C.CLONE_NEWCGROUP, "cgroup"),
    "time": (C.CLONE_NEWTIME, "time"),
}
# setns order for joining an existing container (exec): user first so the
# others are joined with the container's privileges; mount last but one.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class Plan:
    """What init does with namespaces: ``new`` types to unshare, ``join`` paths."""

    def __init__(self, linux_cfg):
        self.new, self.join = set(), {}
        for i, ns in enumerate(linux_cfg.get("namespaces") or []):
            t = ns.get("type")
            if t not in TYPES:
                raise ConfigError(f"config.json: linux.namespaces[{i}].type: unknown namespace type {t!r}")
            if t in self.new or t in self.join:
                raise ConfigError(f"config.json: linux.namespaces[{i}].type: duplicate namespace {t!r}")
            if ns.get("path"):
                self.join[t] = ns["path"]
            else:
                self.new.add(t)

    def has(self, t):
        return t in self.new or t in self.join

    def unshare_flags(self, exclude=("user",)):
        flags = 0
        for t in self.new:
            if t not in exclude:
                flags |= TYPES[t][0]
        return flags

    def open_join_fds(self):
        """Open every join path now (runtime side) so a bad path fails create early."""
        fds = {}
        try:
            for t, path in self.join.items():
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    raise OcirtError(f"config.json: linux.namespaces: cannot open {t} namespace {path}: {e.strerror}")
                fds[t] = fd
                _check_ns_type(fd, t, path)
        except Exception:
            for fd in fds.values():
                os.close(fd)
            raise
        return fds


def _check_ns_type(fd, t, path):
    """The path must be a namespace of the matching type (spec requirement)."""
    import fcntl
    try:
        kind = fcntl.ioctl(fd, C.NS_GET_NSTYPE)
    except OSError:
        raise OcirtError(f"config.json: linux.namespaces: {path} is not a namespace") from None
    if kind != TYPES[t][0]:
        raise OcirtError(f"config.json: linux.namespaces: {path} is not a {t} namespace")


def write_id_maps(pid, linux_cfg):
    """Written by the parent after the child unshared CLONE_NEWUSER."""
    uid_maps = linux_cfg.get("uidMappings") or []
    gid_maps = linux_cfg.get("gidMappings") or []
    if not uid_maps or not gid_maps:
        raise ConfigError("config.json: linux.uidMappings/gidMappings: a new user namespace needs both mappings")

    def fmt(maps):
        return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)

    try:
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(fmt(uid_maps))
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(fmt(gid_maps))
    except OSError as e:
        raise OcirtError(f"config.json: linux.uidMappings/gidMappings: cannot write id maps: {e.strerror}")


def host_id(maps, container_id):
    for m in maps or []:
        if m["containerID"] <= container_id < m["containerID"] + m["size"]:
            return m["hostID"] + container_id - m["containerID"]
    return None


def write_time_offsets(offsets):
    """After unshare(CLONE_NEWTIME), before the first child enters it."""
    if not offsets:
        return
    lines = []
    for clock, off in offsets.items():
        lines.append(f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n")
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write("".join(lines))
    except OSError as e:
        raise OcirtError(f"config.json: linux.timeOffsets: {e.strerror}")
