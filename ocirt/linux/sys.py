"""Thin wrappers over the compiled libc binding that raise OSError on failure.

Only what ``os`` lacks lives here; everything else uses ``os`` directly.
"""
import os

from ocirt.linux._libc import ffi, lib

C = lib  # constants: sys.C.CLONE_NEWNS, sys.C.MS_BIND, ...


def _check(ret, what, path=None):
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(s):
    return None if s is None else (s if isinstance(s, bytes) else os.fsencode(s))


def unshare(flags):
    _check(lib.unshare(flags), "unshare")


def setns(fd, nstype=0):
    _check(lib.setns(fd, nstype), "setns")


def mount(source, target, fstype, flags=0, data=None):
    _check(lib.mount(_b(source) or ffi.NULL, _b(target), _b(fstype) or ffi.NULL, flags,
                     _b(data) or ffi.NULL), "mount", target)


def umount2(target, flags=0):
    _check(lib.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root, put_old):
    _check(lib.pivot_root_(_b(new_root), _b(put_old)), "pivot_root", new_root)


def openat2(dirfd, path, flags, resolve, mode=0):
    how = ffi.new("struct open_how *", {"flags": flags | os.O_CLOEXEC, "mode": mode, "resolve": resolve})
    return _check(lib.ocirt_openat2(dirfd, _b(path), how), "openat2", path)


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    attr = ffi.new("struct mount_attr *", {"attr_set": attr_set, "attr_clr": attr_clr,
                                            "propagation": propagation, "userns_fd": userns_fd})
    _check(lib.mount_setattr(dirfd, _b(path), flags, attr, ffi.sizeof("struct mount_attr")), "mount_setattr", path)


def open_tree(dirfd, path, flags):
    return _check(lib.open_tree(dirfd, _b(path), flags), "open_tree", path)


def move_mount(from_fd, from_path, to_fd, to_path, flags):
    _check(lib.move_mount(from_fd, _b(from_path), to_fd, _b(to_path), flags), "move_mount", to_path)


def prctl(option, a2=0, a3=0, a4=0, a5=0):
    return _check(lib.prctl(option, a2, a3, a4, a5), "prctl")


def sethostname(name):
    b = _b(name)
    _check(lib.sethostname(b, len(b)), "sethostname")


def setrlimit(resource, soft, hard):
    """soft/hard None: unlimited (RLIM_INFINITY)."""
    limit = ffi.new("struct rlimit *")
    limit.rlim_cur = lib.RLIM_INFINITY if soft is None else soft
    limit.rlim_max = lib.RLIM_INFINITY if hard is None else hard
    _check(lib.setrlimit(resource, limit), "setrlimit")


def socketpair_seqpacket():
    """Two connected, close-on-exec SOCK_SEQPACKET fds (one message per read)."""
    fds = ffi.new("int[2]")
    _check(lib.socketpair(lib.AF_UNIX, lib.SOCK_SEQPACKET | lib.SOCK_CLOEXEC, 0, fds), "socketpair")
    return fds[0], fds[1]


def link_up(name):
    _check(lib.ocirt_link_up(_b(name)), f"bringing {name} up")


def setdomainname(name):
    b = _b(name)
    _check(lib.setdomainname(b, len(b)), "setdomainname")


def personality(persona):
    _check(lib.personality(persona), "personality")


def capget():
    hdr = ffi.new("cap_user_header *", {"version": lib._LINUX_CAPABILITY_VERSION_3, "pid": 0})
    data = ffi.new("cap_user_data[2]")
    _check(lib.ocirt_capget(hdr, data), "capget")
    return data


def capset(effective, permitted, inheritable):
    """Each set is an int bitmask over capability numbers."""
    hdr = ffi.new("cap_user_header *", {"version": lib._LINUX_CAPABILITY_VERSION_3, "pid": 0})
    data = ffi.new("cap_user_data[2]")
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(lib.ocirt_capset(hdr, data), "capset")


def pidfd_send_signal(pidfd, sig):
    _check(lib.ocirt_pidfd_send_signal(pidfd, sig), "pidfd_send_signal")


def close_range_cloexec(first):
    """Mark every fd >= first close-on-exec (no host fd reaches the container)."""
    _check(lib.ocirt_close_range(first, 0xFFFFFFFF, lib.CLOSE_RANGE_CLOEXEC), "close_range")


def ioprio_set(ioclass, level):
    _check(lib.ocirt_ioprio_set(lib.IOPRIO_WHO_PROCESS, 0, (ioclass << lib.IOPRIO_CLASS_SHIFT) | level),
           "ioprio_set")


def keyctl_join_session(name):
    _check(lib.ocirt_keyctl_join_session(_b(name)), "keyctl(JOIN_SESSION_KEYRING)")


def sched_setattr(policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    attr = ffi.new("struct sched_attr *", {"sched_policy": policy, "sched_flags": flags, "sched_nice": nice,
                                            "sched_priority": priority, "sched_runtime": runtime,
                                            "sched_deadline": deadline, "sched_period": period})
    _check(lib.ocirt_sched_setattr(attr), "sched_setattr")
