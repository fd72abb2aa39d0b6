"""The container's filesystem: mounts, devices, pivot_root, masked/readonly paths.

Every mount target is resolved *inside* the rootfs with
``openat2(RESOLVE_IN_ROOT)``: a symlink planted in the image (or swapped in
by a racing container, the CVE-2021-30465 class) resolves against the
rootfs, never the host.  The mount then goes onto ``/proc/self/fd/N`` of the
resolved O_PATH fd, so nothing is looked up by path twice.
"""
import errno
import os
import posixpath
import stat

from ocirt.errors import OcirtError
from ocirt.linux import sys as lsys
from ocirt.linux.sys import C

# option -> (clear, set) flags for mount(2)
_FLAGS = {
    "defaults": (0, 0), "rw": (C.MS_RDONLY, 0), "ro": (0, C.MS_RDONLY),
    "suid": (C.MS_NOSUID, 0), "nosuid": (0, C.MS_NOSUID), "dev": (C.MS_NODEV, 0), "nodev": (0, C.MS_NODEV),
    "exec": (C.MS_NOEXEC, 0), "noexec": (0, C.MS_NOEXEC), "sync": (0, C.MS_SYNCHRONOUS),
    "async": (C.MS_SYNCHRONOUS, 0), "dirsync": (0, C.MS_DIRSYNC), "remount": (0, C.MS_REMOUNT),
    "mand": (0, C.MS_MANDLOCK), "nomand": (C.MS_MANDLOCK, 0), "atime": (C.MS_NOATIME, 0),
    "noatime": (0, C.MS_NOATIME), "diratime": (C.MS_NODIRATIME, 0), "nodiratime": (0, C.MS_NODIRATIME),
    "relatime": (0, C.MS_RELATIME), "norelatime": (C.MS_RELATIME, 0), "strictatime": (0, C.MS_STRICTATIME),
    "nostrictatime": (C.MS_STRICTATIME, 0), "bind": (0, C.MS_BIND), "rbind": (0, C.MS_BIND | C.MS_REC),
    "iversion": (0, C.MS_I_VERSION), "noiversion": (C.MS_I_VERSION, 0), "lazytime": (0, C.MS_LAZYTIME),
    "nolazytime": (C.MS_LAZYTIME, 0), "silent": (0, C.MS_SILENT), "loud": (C.MS_SILENT, 0),
    "nosymfollow": (0, C.MS_NOSYMFOLLOW), "symfollow": (C.MS_NOSYMFOLLOW, 0),
}
PROPAGATION = {
    "private": C.MS_PRIVATE, "rprivate": C.MS_PRIVATE | C.MS_REC, "shared": C.MS_SHARED,
    "rshared": C.MS_SHARED | C.MS_REC, "slave": C.MS_SLAVE, "rslave": C.MS_SLAVE | C.MS_REC,
    "unbindable": C.MS_UNBINDABLE, "runbindable": C.MS_UNBINDABLE | C.MS_REC,
}
# recursive (mount_setattr, AT_RECURSIVE) options: name -> (attr_set, attr_clr)
_RECURSIVE = {
    "rro": (C.MOUNT_ATTR_RDONLY, 0), "rrw": (0, C.MOUNT_ATTR_RDONLY),
    "rnosuid": (C.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, C.MOUNT_ATTR_NOSUID),
    "rnodev": (C.MOUNT_ATTR_NODEV, 0), "rdev": (0, C.MOUNT_ATTR_NODEV),
    "rnoexec": (C.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, C.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (C.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, C.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (C.MOUNT_ATTR_RELATIME, C.MOUNT_ATTR__ATIME), "rnorelatime": (0, C.MOUNT_ATTR_RELATIME),
    "rnoatime": (C.MOUNT_ATTR_NOATIME, C.MOUNT_ATTR__ATIME), "ratime": (0, C.MOUNT_ATTR_NOATIME),
    "rstrictatime": (C.MOUNT_ATTR_STRICTATIME, C.MOUNT_ATTR__ATIME), "rnostrictatime": (0, C.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (C.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, C.MOUNT_ATTR_NOSYMFOLLOW),
}
# statvfs flags that a bind remount must keep (the kernel refuses to clear
# locked ones inside a user namespace).
_KEEP_ON_REMOUNT = ((os.ST_NOSUID, C.MS_NOSUID), (os.ST_NODEV, C.MS_NODEV), (os.ST_NOEXEC, C.MS_NOEXEC),
                    (os.ST_NOATIME, C.MS_NOATIME), (os.ST_NODIRATIME, C.MS_NODIRATIME),
                    (os.ST_RELATIME, C.MS_RELATIME))

DEFAULT_DEVICES = (  # path, major, minor (runtime-spec "Default Devices")
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
_RESOLVE = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_MAGICLINKS


class Mount:
    __slots__ = ("index", "destination", "type", "source", "flags", "propagation", "recursive", "data")

    def __init__(self, index, m):
        self.index = index
        self.destination = m["destination"]
        self.type = m.get("type") or ""
        self.source = m.get("source")
        self.flags, self.propagation, self.recursive, data = 0, [], [], []
        for opt in m.get("options") or []:
            if opt in _FLAGS:
                clear, set_ = _FLAGS[opt]
                self.flags = (self.flags & ~clear) | set_
            elif opt in PROPAGATION:
                self.propagation.append(PROPAGATION[opt])
            elif opt in _RECURSIVE:
                self.recursive.append(_RECURSIVE[opt])
            elif opt in ("idmap", "ridmap", "tmpcopyup"):  # idmap: made by the runtime side (linux/idmap.py)
                continue
            else:
                data.append(opt)  # unknown options are mount(2) data (spec)
        if self.type == "bind":
            self.flags |= C.MS_BIND
        self.data = ",".join(data)

    @property
    def is_bind(self):
        return bool(self.flags & C.MS_BIND)

    def where(self):
        return f"mounts[{self.index}] ({self.destination})"


class Rootfs:
    """Builds the container filesystem under ``path`` from init, before pivot_root."""

    def __init__(self, path, bundle, user_ns=False, host_ns=False):
        self.path = path
        self.bundle = bundle
        self.user_ns = user_ns
        # host_ns: no mount namespace of its own, the container shares the
        # runtime's (config-linux.md: an unlisted type is inherited).  The
        # mounts are then made in that namespace, on a bind of the rootfs
        # onto itself, and the process is chroot()ed instead of pivoted.
        self.host_ns = host_ns
        self.fd = None

    # -- path resolution confined to the rootfs --------------------------------
    def open_in_root(self, rel, flags=os.O_PATH):
        return lsys.openat2(self.fd, rel, flags, _RESOLVE)

    def ensure(self, dest, is_dir=True, mode=0o755, _links=0):
        """Create ``dest`` (and parents) inside the rootfs; return an O_PATH fd to it.

        A dangling symlink on the way is followed the way the kernel would
        inside the rootfs: its target is created, inside the rootfs.
        """
        rel = posixpath.normpath("/" + dest).lstrip("/")
        if not rel:
            return os.dup(self.fd)
        try:
            return self.open_in_root(rel)
        except FileNotFoundError:
            pass
        if _links > 40:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", dest)
        parent, _, name = rel.rpartition("/")
        pfd = self.ensure(parent, True, _links=_links) if parent else os.dup(self.fd)
        try:
            # an O_PATH fd cannot be used as dir_fd for mkdir; reopen the dir
            dfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            parent_in_root = os.readlink(f"/proc/self/fd/{pfd}")[len(self.path):] or "/"
            try:
                if is_dir:
                    os.mkdir(name, mode, dir_fd=dfd)
                else:
                    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     0o644, dir_fd=dfd))
            except FileExistsError:
                if stat.S_ISLNK(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                    target = os.readlink(name, dir_fd=dfd)
                    if not target.startswith("/"):
                        target = posixpath.join(parent_in_root, target)
                    os.close(self.ensure(target, is_dir, mode, _links + 1))
            finally:
                os.close(dfd)
        finally:
            os.close(pfd)
        return self.open_in_root(rel)

    # -- the steps, in order ---------------------------------------------------
    def prepare(self, propagation=None):
        """Make / rslave (rprivate when asked) so nothing propagates back to the
        host, then bind the rootfs on itself for pivot_root.

        No mount is left shared, which pivot_root requires; the bind of a
        slave rootfs is a slave of the same master, so "slave" keeps following
        the host.  shared/unbindable are applied after pivot_root.
        """
        initial = C.MS_PRIVATE if propagation in ("private", "rprivate") else C.MS_SLAVE
        if self.host_ns:
            # the runtime's own / is not ours to change: only the bind below
            # is made a slave, so nothing mounted in it propagates back
            lsys.mount(self.path, self.path, None, C.MS_BIND | C.MS_REC)
            lsys.mount(None, self.path, None, initial | C.MS_REC)
        else:
            lsys.mount(None, "/", None, initial | C.MS_REC)
            lsys.mount(self.path, self.path, None, C.MS_BIND | C.MS_REC)
        self.fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def mount_id(self):
        """The id of the rootfs bind made by prepare() (the top mount at path)."""
        return fd_mount_id(self.fd)

    def mount_all(self, mounts, cgroup_ns, before_cgroup_mount=None, idmapped_fds=None):
        """``idmapped_fds``: {mount index: detached idmapped tree} for the idmapped bind mounts."""
        for i, m in enumerate(mounts or []):
            mount = Mount(i, m)
            if mount.type in ("cgroup", "cgroup2") and before_cgroup_mount:
                before_cgroup_mount()  # the container's cgroup (namespace) must exist first
            self.mount_one(mount, cgroup_ns, (idmapped_fds or {}).get(i))

    def mount_one(self, m, cgroup_ns, idmapped_fd=None):
        if m.type == "cgroup" or m.type == "cgroup2":
            return self._mount_cgroup(m, cgroup_ns)
        source = m.source
        src_is_dir = True
        if m.is_bind:
            if not source:
                raise OcirtError(f"config.json: {m.where()}: bind mount without a source")
            if not os.path.isabs(source):
                source = os.path.join(self.bundle, source)
            try:
                # an idmapped tree was opened by the runtime side: its source may be out of init's reach
                src_is_dir = stat.S_ISDIR((os.fstat(idmapped_fd) if idmapped_fd is not None else os.stat(source)).st_mode)
            except OSError as e:
                raise OcirtError(f"config.json: {m.where()}: source {source}: {e.strerror}") from None
        try:
            fd = self.ensure(m.destination, is_dir=src_is_dir)
        except OSError as e:
            raise OcirtError(f"config.json: {m.where()}: cannot create mount point: {e.strerror}") from None
        target = f"/proc/self/fd/{fd}"
        try:
            if m.is_bind:
                if idmapped_fd is not None:
                    lsys.move_mount(idmapped_fd, "", fd, "", C.MOVE_MOUNT_F_EMPTY_PATH | C.MOVE_MOUNT_T_EMPTY_PATH)
                else:
                    lsys.mount(source, target, None, m.flags & (C.MS_BIND | C.MS_REC))
                os.close(fd)  # the target is now the bind mount: re-resolve it
                fd = self.open_in_root(m.destination.lstrip("/"))
                target = f"/proc/self/fd/{fd}"
                extra = m.flags & ~(C.MS_BIND | C.MS_REC | C.MS_REMOUNT)
                if extra:
                    lsys.mount(None, target, None, C.MS_BIND | C.MS_REMOUNT | extra | _locked_flags(target))
            else:
                lsys.mount(source or m.type, target, m.type, m.flags & ~C.MS_REMOUNT, m.data or None)
            if m.propagation or m.recursive:
                os.close(fd)
                fd = self.open_in_root(m.destination.lstrip("/"))
                target = f"/proc/self/fd/{fd}"
                for p in m.propagation:
                    lsys.mount(None, target, None, p)
                for attr_set, attr_clr in m.recursive:
                    lsys.mount_setattr(fd, "", C.AT_EMPTY_PATH | C.AT_RECURSIVE, attr_set, attr_clr)
        except OSError as e:
            raise OcirtError(f"config.json: {m.where()}: mount {m.type or 'bind'} {source or ''}: "
                             f"{e.strerror}") from None
        finally:
            os.close(fd)

    def _mount_cgroup(self, m, cgroup_ns):
        """``type: cgroup``: the container's view of its cgroups, read-only when asked.

        With a cgroup namespace fresh cgroup mounts show the container's own
        cgroup as the root; without one the container's cgroup dirs are bound.
        """
        from ocirt.cgroups import own_hierarchies
        ro = m.flags & C.MS_RDONLY
        base = m.flags & (C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC | C.MS_RELATIME)
        mode, hierarchies = own_hierarchies()
        fd = self.ensure(m.destination)
        try:
            if mode == "v2":
                self._mount_cgroup_dir(m.destination, "", hierarchies[0], cgroup_ns, base | ro)
                return
            lsys.mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", base, "mode=755")
            for entry in hierarchies:
                sub = os.path.basename(entry[1].mountpoint)
                self._mount_cgroup_dir(m.destination, sub, entry, cgroup_ns, base | ro)
            if ro:
                os.close(fd)
                fd = self.open_in_root(m.destination.lstrip("/"))
                lsys.mount(None, f"/proc/self/fd/{fd}", None, C.MS_BIND | C.MS_REMOUNT | C.MS_RDONLY | base)
        except OSError as e:
            raise OcirtError(f"config.json: {m.where()}: cgroup mount: {e.strerror}") from None
        finally:
            os.close(fd)

    def _mount_cgroup_dir(self, dest, sub, hierarchy, cgroup_ns, flags):
        controllers, _hierarchy, own_dir = hierarchy
        path = f"{dest}/{sub}" if sub else dest
        fd = self.ensure(path)
        target = f"/proc/self/fd/{fd}"
        try:
            if cgroup_ns:
                if controllers:
                    lsys.mount("cgroup", target, "cgroup", flags, controllers)
                else:
                    lsys.mount("cgroup2", target, "cgroup2", flags)
            else:
                lsys.mount(own_dir, target, None, C.MS_BIND | C.MS_REC)
                if flags & C.MS_RDONLY:
                    os.close(fd)  # re-resolve: the fd still names the directory under the bind
                    fd = self.open_in_root(path.lstrip("/"))
                    lsys.mount(None, f"/proc/self/fd/{fd}", None, C.MS_BIND | C.MS_REMOUNT | flags)
        finally:
            os.close(fd)

    def create_devices(self, devices, default=True):
        """Default devices plus linux.devices: mknod, or bind from the host in a user ns."""
        wanted = []
        if default:
            wanted = [{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0,
                       "_default": True} for p, ma, mi in DEFAULT_DEVICES]
        configured = {d["path"] for d in devices or []}
        wanted = [d for d in wanted if d["path"] not in configured] + list(devices or [])
        for i, dev in enumerate(wanted):
            self._make_device(dev, i)
        for src, link in DEV_SYMLINKS:
            self._symlink(src, link)
        self._symlink("pts/ptmx", "/dev/ptmx", replace=True)
        if os.path.exists("/proc/kcore"):
            self._symlink("/proc/kcore", "/dev/core")

    def _make_device(self, dev, i):
        path = dev["path"]
        where = f"linux.devices ({path})" if not dev.get("_default") else f"default device {path}"
        kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        kind = kinds.get(dev.get("type"))
        if kind is None:
            raise OcirtError(f"config.json: {where}: unknown device type {dev.get('type')!r}")
        parent, _, name = path.lstrip("/").rpartition("/")
        pfd = self.ensure(parent) if parent else os.dup(self.fd)
        try:
            dfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(pfd)
        try:
            try:
                existing = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISCHR(existing.st_mode) or stat.S_ISBLK(existing.st_mode) or not dev.get("_default"):
                    os.unlink(name, dir_fd=dfd)
                else:
                    return  # the image ships something else there; leave it
            except FileNotFoundError:
                pass
            mode = (dev.get("fileMode") if dev.get("fileMode") is not None else 0o666) & 0o7777
            rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if kind != stat.S_IFIFO else 0
            try:
                os.mknod(name, kind | mode, rdev, dir_fd=dfd)
            except PermissionError:
                if not self.user_ns or kind == stat.S_IFIFO:
                    raise
                # mknod is refused in a user namespace: bind the host's node instead
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd))
                tfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                try:
                    lsys.mount(path, f"/proc/self/fd/{tfd}", None, C.MS_BIND)
                finally:
                    os.close(tfd)
                return
            os.chmod(name, mode, dir_fd=dfd, follow_symlinks=False)  # mknod honours the umask
            os.chown(name, dev.get("uid") or 0, dev.get("gid") or 0, dir_fd=dfd, follow_symlinks=False)
        except OSError as e:
            raise OcirtError(f"config.json: {where}: cannot create device: {e.strerror}") from None
        finally:
            os.close(dfd)

    def _symlink(self, src, link, replace=False):
        parent, _, name = link.lstrip("/").rpartition("/")
        pfd = self.ensure(parent)
        dfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        os.close(pfd)
        try:
            if replace:
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        os.unlink(name, dir_fd=dfd)
                except FileNotFoundError:
                    pass
            os.symlink(src, name, dir_fd=dfd)
        except FileExistsError:
            pass
        finally:
            os.close(dfd)

    def pivot(self, no_pivot=False):
        os.fchdir(self.fd)
        if self.host_ns:
            os.chroot(".")  # pivot_root would move the runtime's own root
        elif no_pivot:
            lsys.mount(self.path, "/", None, C.MS_MOVE)
            os.chroot(".")
        else:
            lsys.pivot_root(".", ".")
            # the old root is stacked under the new one: detach it
            lsys.umount2(".", C.MNT_DETACH)
        os.chdir("/")
        os.close(self.fd)
        self.fd = None


def fd_mount_id(fd):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    return None


def release_host_bind(path, mount_id):
    """Undo a host_ns rootfs: detach the bind prepare() made at ``path``, and
    with it every mount made below it for the container.  Only when the top
    mount at ``path`` is still that bind (same mount id): never a mount that
    was there before (an image's overlay, say)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fd_mount_id(fd) != mount_id:
            return False
    finally:
        os.close(fd)
    lsys.umount2(path, C.MNT_DETACH)
    return True


def _locked_flags(target):
    st = os.statvfs(target)
    flags = 0
    for st_flag, ms_flag in _KEEP_ON_REMOUNT:
        if st.f_flag & st_flag:
            flags |= ms_flag
    return flags


# -- steps after pivot_root ----------------------------------------------------

def bind_console(pty_name):
    """The container's /dev/console is its pty (runc's behaviour)."""
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    except OSError:
        pass  # a device node already there is fine: we mount over it
    lsys.mount(pty_name, "/dev/console", None, C.MS_BIND)


def set_root_propagation(name):
    if name in ("shared", "rshared", "unbindable", "runbindable"):
        lsys.mount(None, "/", None, PROPAGATION[name] | C.MS_REC)


def remount_root_readonly():
    lsys.mount(None, "/", None, C.MS_BIND | C.MS_REMOUNT | C.MS_RDONLY | _locked_flags("/"))


def mask_paths(paths):
    for p in paths or []:
        try:
            st = os.stat(p, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            if stat.S_ISDIR(st.st_mode):
                lsys.mount("tmpfs", p, "tmpfs", C.MS_RDONLY, "size=0k")
            else:
                lsys.mount("/dev/null", p, None, C.MS_BIND)
        except OSError as e:
            raise OcirtError(f"config.json: linux.maskedPaths: {p}: {e.strerror}") from None


def readonly_paths(paths):
    for p in paths or []:
        try:
            lsys.mount(p, p, None, C.MS_BIND | C.MS_REC)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise OcirtError(f"config.json: linux.readonlyPaths: {p}: {e.strerror}") from None
        try:
            lsys.mount(None, p, None, C.MS_BIND | C.MS_REMOUNT | C.MS_RDONLY | C.MS_REC | _locked_flags(p))
        except OSError as e:
            raise OcirtError(f"config.json: linux.readonlyPaths: {p}: {e.strerror}") from None
