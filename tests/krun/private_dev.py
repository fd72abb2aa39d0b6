"""A private /dev for krun tests: a mount namespace where /dev holds only the
basic nodes plus the listed devices.

``kvm`` is mknod'ed with the host's numbers.  ``sev`` is a STAND-IN (a bind
mount of /dev/null): this host has no /dev/sev, and the libkrun test double
never opens it.  Used as a module (mini_init.py) or as a wrapper:

    python private_dev.py kvm,sev -- COMMAND ARGS...
"""
import os
import stat
import sys

BASIC = ("null", "zero", "full", "random", "urandom", "tty")


def private_dev(names):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from ocirt.linux._libc import ffi, lib

    def check(ret, what):
        if ret < 0:
            raise OSError(ffi.errno, f"{what}: {os.strerror(ffi.errno)}")
    numbers = {name: os.stat(f"/dev/{name}").st_rdev for name in BASIC + ("kvm",)}
    check(lib.unshare(lib.CLONE_NEWNS), "unshare")
    check(lib.mount(b"none", b"/", ffi.NULL, lib.MS_REC | lib.MS_PRIVATE, ffi.NULL), "make-rprivate")
    check(lib.mount(b"tmpfs", b"/dev", b"tmpfs", 0, b"mode=755"), "mount /dev")
    for name in BASIC + tuple(n for n in names if n == "kvm"):
        os.mknod(f"/dev/{name}", stat.S_IFCHR | 0o666, numbers[name])
        os.chmod(f"/dev/{name}", 0o666)
    if "sev" in names:
        open("/dev/sev", "w").close()
        check(lib.mount(b"/dev/null", b"/dev/sev", ffi.NULL, lib.MS_BIND, ffi.NULL), "bind /dev/sev")


if __name__ == "__main__":
    devices, sep, *command = sys.argv[1:]
    assert sep == "--" and command, __doc__
    private_dev([d for d in devices.split(",") if d])
    os.execvp(command[0], command)
