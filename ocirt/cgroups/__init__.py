"""Cgroup drivers: v1, v2 and hybrid behind one small manager interface.

The interface (docs/ARCHITECTURE.md) is::

    manager = manager_for(linux_cfg, container_id, systemd=False)
    manager.create(); manager.add_pid(pid); manager.apply_resources(res)
    manager.procs(); manager.kill_all(sig); manager.freeze(); manager.thaw()
    manager.is_frozen(); manager.stats(); manager.destroy()
    manager.to_dict()  /  manager_from_dict(d)

This module is on every create/delete path, so it imports only ``os`` and
``errno``; resources, stats, device filters and OOM events live in their own
modules and are imported when used.

Layout is read from /proc/self/mountinfo once per process:

* ``v2``     one cgroup2 mount (normally /sys/fs/cgroup);
* ``v1``     one cgroup v1 mount per hierarchy (/sys/fs/cgroup/<controllers>);
* ``hybrid`` v1 hierarchies plus a cgroup2 mount (/sys/fs/cgroup/unified).
  The container is placed in every v1 hierarchy *and* in the unified one
  (process tracking, cgroup.kill, and controllers bound to no v1 hierarchy,
  such as hugetlb on this host).

cgroupsPath (runtime-spec config-linux.md "Cgroups path"):

* absolute (``/a/b``): relative to the root of each hierarchy;
* relative (``a/b``): relative to the cgroup ocirt itself runs in, per
  hierarchy, as read from /proc/self/cgroup (runc does the same);
* absent: ``/ocirt/<container-id>`` (runc uses ``/<id>``; a common parent
  keeps the hierarchy root tidy).

Only the container's own cgroup (and what the container made below it) is
removed on destroy; parents such as ``/ocirt`` or ``/libpod_parent`` are
shared between containers and stay.
"""
import os
import sys

from ocirt.errors import ConfigError, OcirtError

DEFAULT_PARENT = "/ocirt"
_KEY_UNIFIED = "unified"


# --------------------------------------------------------------------------- layout

class Hierarchy:
    """One mounted cgroup hierarchy."""
    __slots__ = ("key", "controllers", "mountpoint", "root", "version")

    def __init__(self, key, controllers, mountpoint, root, version):
        self.key = key                  # "cpu", "cpu,cpuacct", "name=systemd", "unified"
        self.controllers = controllers  # v1: tuple of controller names; v2: ()
        self.mountpoint = mountpoint
        self.root = root                # the cgroup path the mount shows as its root
        self.version = version          # 1 or 2


def _unescape_mountinfo(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _read_mounts(mountinfo="/proc/self/mountinfo"):
    """Yield (mountpoint, root, fstype, super_options) of every mount, in order."""
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index("-", 6)
            except ValueError:
                continue
            yield (_unescape_mountinfo(fields[4]), _unescape_mountinfo(fields[3]),
                   fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else "")


_LAYOUT = None


def detect_layout(mountinfo="/proc/self/mountinfo"):
    """Return (mode, [Hierarchy]) for this mount namespace (cached per process).

    A mount hidden by a later mount on the same or a parent directory is
    skipped: that is what a private mount namespace with cgroup2 mounted
    over /sys/fs/cgroup looks like.
    """
    global _LAYOUT
    if _LAYOUT is not None and mountinfo == "/proc/self/mountinfo":
        return _LAYOUT
    mounts = list(_read_mounts(mountinfo))
    found = {}
    for index, (mountpoint, root, fstype, options) in enumerate(mounts):
        if fstype not in ("cgroup", "cgroup2"):
            continue
        if any(later == mountpoint or mountpoint.startswith(later.rstrip("/") + "/")
               for later, _, _, _ in mounts[index + 1:]):
            continue
        if fstype == "cgroup2":
            found.setdefault(_KEY_UNIFIED, Hierarchy(_KEY_UNIFIED, (), mountpoint, root, 2))
            continue
        opts = options.split(",")
        controllers = tuple(o for o in opts if o not in ("rw", "ro") and "=" not in o and
                            o not in ("noprefix", "clone_children", "xattr", "cpuset_v2_mode",
                                      "favordynmods", "nsdelegate"))
        names = [o for o in opts if o.startswith("name=")]
        if controllers:
            key = ",".join(controllers)
        elif names == ["name=systemd"]:
            key = "name=systemd"
        else:
            continue  # other named hierarchies are not ours to manage
        found.setdefault(key, Hierarchy(key, controllers, mountpoint, root, 1))
    v1 = any(h.version == 1 and h.controllers for h in found.values())
    if v1 and _KEY_UNIFIED in found:
        mode = "hybrid"
    elif v1:
        mode = "v1"
    elif _KEY_UNIFIED in found:
        mode = "v2"
        found = {_KEY_UNIFIED: found[_KEY_UNIFIED]}
    else:
        raise OcirtError("no cgroup filesystem is mounted (looked for cgroup and cgroup2 in /proc/self/mountinfo)")
    layout = (mode, list(found.values()))
    if mountinfo == "/proc/self/mountinfo":
        _LAYOUT = layout
    return layout


def _own_cgroups(path="/proc/self/cgroup"):
    """{hierarchy key: cgroup path} of the calling process."""
    own = {}
    with open(path) as f:
        for line in f:
            num, ctrls, cgpath = line.rstrip("\n").split(":", 2)
            own[_KEY_UNIFIED if num == "0" and not ctrls else ctrls] = cgpath
    return own


def _clean_cgroups_path(path):
    """Normalise cgroupsPath, refusing anything that leaves the hierarchy."""
    if "\0" in path or "\n" in path:
        raise ConfigError("config.json: linux.cgroupsPath: contains a NUL or newline")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError(f"config.json: linux.cgroupsPath: {path!r} must not contain '..'")
    if not parts:
        raise ConfigError(f"config.json: linux.cgroupsPath: {path!r} names the hierarchy root")
    return "/".join(parts)


def _dir_in(hierarchy, cgroup_path):
    """The directory of cgroup path ``cgroup_path`` inside ``hierarchy``'s mount."""
    root = hierarchy.root.rstrip("/")
    if root and (cgroup_path == root or cgroup_path.startswith(root + "/")):
        cgroup_path = cgroup_path[len(root):]
    return os.path.join(hierarchy.mountpoint, cgroup_path.lstrip("/"))


def own_hierarchies():
    """[(mount options, hierarchy, directory of the calling process's cgroup)].

    For the container's ``type: cgroup`` mount: the options a fresh mount of
    the hierarchy needs ("cpu", "name=systemd"; "" for cgroup2) and the host
    directory to bind when there is no cgroup namespace.
    """
    mode, hierarchies = detect_layout()
    own = _own_cgroups()
    return mode, [(h.key if h.version == 1 else "", h, _dir_in(h, own.get(h.key, "/"))) for h in hierarchies]


class MigrationWarmup:
    """A throwaway child that keeps moving itself into the cgroup it is
    already in, until ``finish``.

    Every cgroup.procs write takes the kernel's global
    cgroup_threadgroup_rwsem for writing.  Its first writer waits out a full
    RCU grace period (rcu_sync_enter: 10-16 ms measured here); writers that
    come while another is inside, or within about one grace period after the
    last one left, pass at once.  The child pays the first wait while create
    or exec parses and prepares, then keeps the fast path open with a no-op
    move every 2 ms, so the container's own migration is quick whenever it
    comes.  Any failure only forgoes the head start.

    The native launcher (ocirt/launcher/launcher.c) starts the same child in
    C before the interpreter for create, run and exec; it is adopted here.
    """
    INTERVAL = 0.002
    LIMIT = 2.0  # seconds: an orphaned child gives up on its own (launcher.c: the same)

    def __init__(self, start=True):
        """``start=False``: only adopt the launcher's child, so that it can be stopped."""
        self.pid = getattr(sys, "_ocirt_cgroup_warmup", None)
        if self.pid is not None:
            del sys._ocirt_cgroup_warmup
            return
        if not start:
            return
        try:
            self.pid = os.fork()
        except OSError:
            self.pid = None
        if self.pid == 0:
            try:
                os.closerange(0, 1 << 20)  # hold none of the caller's pipes or sockets open
                self._keep_moving()
            finally:
                os._exit(0)

    @classmethod
    def _keep_moving(cls):
        import time
        fd = cls._own_procs_file()
        if fd is None:
            return
        deadline = time.monotonic() + cls.LIMIT
        while time.monotonic() < deadline:
            os.write(fd, b"0")  # "0": the writing process itself
            time.sleep(cls.INTERVAL)

    @staticmethod
    def _own_procs_file():
        own = _own_cgroups()
        targets = []
        if _KEY_UNIFIED in own:
            targets += [root + own[_KEY_UNIFIED] for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")]
        targets += [f"/sys/fs/cgroup/{key}{path}" for key, path in own.items() if key != _KEY_UNIFIED]
        for directory in targets:
            try:
                fd = os.open(directory.rstrip("/") + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                os.write(fd, b"0")
                return fd
            except OSError:
                os.close(fd)
        return None

    def finish(self):
        """Stop and reap the child; idempotent."""
        pid, self.pid = self.pid, None
        if pid:
            try:
                os.kill(pid, 9)  # SIGKILL, without importing signal (enum)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


# --------------------------------------------------------------------------- interface

def manager_for(linux_cfg, container_id, systemd=False):
    """A manager for the container's cgroup as configured; nothing is created yet."""
    if systemd:
        raise OcirtError("the systemd cgroup driver is not supported: this host runs no systemd")
    linux_cfg = linux_cfg or {}
    raw = linux_cfg.get("cgroupsPath")
    if raw is not None and not isinstance(raw, str):
        raise ConfigError("config.json: linux.cgroupsPath: must be a string")
    if not raw:
        raw = f"{DEFAULT_PARENT}/{container_id}"
    relative = not raw.startswith("/")
    cleaned = _clean_cgroups_path(raw)
    mode, hierarchies = detect_layout()
    own = _own_cgroups() if relative else {}
    paths = {}
    for h in hierarchies:
        base = own.get(h.key, "/") if relative else "/"
        paths[h.key] = _dir_in(h, os.path.join(base, cleaned))
    from ocirt.cgroups.fs import Manager
    return Manager(mode, paths, owned=[], cgroups_path=raw)


def manager_from_dict(d):
    """Rebuild the manager saved by ``to_dict`` (no mountinfo parsing)."""
    from ocirt.cgroups.fs import Manager
    if not isinstance(d, dict) or "paths" not in d:
        raise OcirtError("state.json: cgroup: not a cgroup manager record")
    return Manager(d.get("mode", "v1"), dict(d["paths"]), owned=list(d.get("owned", [])),
                   cgroups_path=d.get("cgroupsPath", ""))


def manager_of(container):
    """The manager saved in a container's state (for the pause/update/ps/events verbs)."""
    if not container.cgroup:
        raise OcirtError(f"container {container.id} has no cgroup")
    return manager_from_dict(container.cgroup)
