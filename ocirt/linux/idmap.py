"""Idmapped bind mounts (runtime-spec 1.1+ ``mounts[].uidMappings`` /
``gidMappings``, 1.2 options ``idmap`` / ``ridmap``).

The runtime side clones each source tree with open_tree(OPEN_TREE_CLONE)
while it is still in the host's namespaces, marks the detached tree
MOUNT_ATTR_IDMAP with a user namespace holding the mount's mappings, and
hands the fd to init, which attaches it with move_mount() at the target it
resolved inside the rootfs.  A mapping line reads as for a user namespace:
an id ``containerID`` on the source filesystem is seen as ``hostID`` through
the mount (kernel Documentation/filesystems/idmappings.rst).

``idmap`` maps only the top mount of the tree, ``ridmap`` every mount in it.
Without mappings of its own a mount takes the container's user-namespace
mappings.
"""
import errno
import os

from ocirt.errors import ConfigError, OcirtError
from ocirt.linux import sys as lsys
from ocirt.linux.sys import C


class IdmappedMount:
    __slots__ = ("index", "source", "uid_maps", "gid_maps", "recursive_tree", "recursive_idmap")

    def __init__(self, index, source, uid_maps, gid_maps, recursive_tree, recursive_idmap):
        self.index, self.source = index, source
        self.uid_maps, self.gid_maps = uid_maps, gid_maps
        self.recursive_tree, self.recursive_idmap = recursive_tree, recursive_idmap


def plan(config, bundle, user_ns):
    """The idmapped mounts a config asks for (``user_ns``: the container gets a new user namespace)."""
    linux = config.get("linux") or {}
    planned = []
    for index, m in enumerate(config.get("mounts") or []):
        options = m.get("options") or []
        mode = "ridmap" if "ridmap" in options else "idmap" if "idmap" in options else None
        uid_maps, gid_maps = m.get("uidMappings"), m.get("gidMappings")
        if mode is None and not uid_maps and not gid_maps:
            continue
        where = f"config.json: mounts[{index}] ({m.get('destination')})"
        if m.get("type") != "bind" and "bind" not in options and "rbind" not in options:
            raise ConfigError(f"{where}: idmapped mounts must be bind mounts")
        if bool(uid_maps) != bool(gid_maps):
            raise ConfigError(f"{where}: an idmapped mount needs both uidMappings and gidMappings")
        if not uid_maps:
            if not user_ns:
                raise ConfigError(f"{where}: {mode} without uidMappings/gidMappings takes the container's "
                                  "user-namespace mappings, and this container has no user namespace")
            uid_maps, gid_maps = linux.get("uidMappings"), linux.get("gidMappings")
        source = m.get("source") or ""
        if not os.path.isabs(source):
            source = os.path.join(bundle, source)
        planned.append(IdmappedMount(index, source, uid_maps, gid_maps,
                                     recursive_tree="rbind" in options, recursive_idmap=mode == "ridmap"))
    return planned


def prepare(planned):
    """Detached, idmapped clones of the planned sources: {mount index: fd}.

    The fds are close-on-exec; the caller closes them once init has them.
    """
    fds = {}
    userns_fds = {}
    try:
        for p in planned:
            key = (_map_text(p.uid_maps), _map_text(p.gid_maps))
            if key not in userns_fds:
                userns_fds[key] = _user_namespace(*key)
            fds[p.index] = _idmapped_clone(p, userns_fds[key])
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    finally:
        for fd in userns_fds.values():
            os.close(fd)
    return fds


def _map_text(maps):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def _idmapped_clone(p, userns_fd):
    where = f"config.json: mounts[{p.index}]"
    flags = C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC | (C.AT_RECURSIVE if p.recursive_tree else 0)
    try:
        fd = lsys.open_tree(C.AT_FDCWD, p.source, flags)
    except OSError as e:
        raise OcirtError(f"{where}: source {p.source}: {os.strerror(e.errno)}") from None
    try:
        lsys.mount_setattr(fd, "", C.AT_EMPTY_PATH | (C.AT_RECURSIVE if p.recursive_idmap else 0),
                           attr_set=C.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
    except OSError as e:
        os.close(fd)
        if e.errno == errno.EINVAL:
            raise OcirtError(f"{where}: the filesystem of {p.source} does not support idmapped mounts "
                             "(or a mount in the tree is already idmapped)") from None
        if e.errno == errno.ENOSYS:
            raise OcirtError(f"{where}: idmapped mounts need Linux 5.12 or later") from None
        raise OcirtError(f"{where}: cannot idmap {p.source}: {os.strerror(e.errno)}") from None
    return fd


def _user_namespace(uid_map, gid_map):
    """An fd for a new user namespace with these maps, made by a short-lived child."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child only unshares, says so and waits to be released
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            lsys.unshare(C.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OcirtError("cannot create a user namespace for an idmapped mount")
        try:
            with open(f"/proc/{pid}/uid_map", "w") as f:
                f.write(uid_map)
            with open(f"/proc/{pid}/gid_map", "w") as f:
                f.write(gid_map)
        except OSError as e:
            raise OcirtError(f"config.json: mounts: cannot write the idmapped mount's id maps: {e.strerror}") from None
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)  # releases the child
        os.waitpid(pid, 0)
