"""Terminals: the console-socket protocol and foreground pty proxying.

runc's protocol (reference/oci-runtime-cli.md §6.1): the pty is allocated
inside the container from its own devpts, then one ``sendmsg`` carries the
pty name as data and exactly one fd (the master) as SCM_RIGHTS.  No JSON.
"""
import fcntl
import os
import socket
import struct

from ocirt.errors import OcirtError


def connect_socket(path):
    """Connected AF_UNIX stream socket; long paths go through /proc/self/fd."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    target = path
    dirfd = None
    if len(os.fsencode(path)) > 107:
        dirfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_CLOEXEC)
        target = f"/proc/self/fd/{dirfd}/{os.path.basename(path)}"
    try:
        sock.connect(target)
    except OSError as e:
        sock.close()
        raise OcirtError(f"cannot connect to console socket {path}: {e.strerror}") from None
    finally:
        if dirfd is not None:
            os.close(dirfd)
    return sock


def open_pty_in_container(size=None):
    """Open a pty from the container's /dev/pts; return (master, peer, name)."""
    from ocirt.linux.sys import C
    master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    st = os.fstat(master)
    if os.major(st.st_rdev) != 5 or os.minor(st.st_rdev) != 2:
        raise OcirtError("/dev/pts/ptmx in the container is not a devpts ptmx")
    fcntl.ioctl(master, C.TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, C.TIOCGPTN, b"\0\0\0\0"))[0]
    name = f"/dev/pts/{n}"
    try:
        peer = fcntl.ioctl(master, C.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        peer = os.open(name, os.O_RDWR | os.O_NOCTTY)
    if size:
        set_size(peer, size.get("height", 0), size.get("width", 0))
    return master, peer, name


def set_size(fd, rows, cols):
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def send_master(sock, name, master):
    socket.send_fds(sock, [name.encode()], [master])


def receive_master(sock):
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OcirtError("runtime did not send the pty master")
    return fds[0]


def make_controlling_tty(peer):
    from ocirt.linux.sys import C
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader
    fcntl.ioctl(peer, C.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(peer, fd)
    if peer > 2:
        os.close(peer)


def proxy(master, child_pid):
    """Foreground terminal: copy our stdio <-> the pty master until the child exits.

    Returns the child's wait status.
    """
    import select
    import termios
    import tty
    stdin_tty = os.isatty(0)
    saved = None
    if stdin_tty:
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        try:
            rows, cols = os.get_terminal_size(0)
            set_size(master, rows, cols)
        except OSError:
            pass
    fds = [master, 0]
    status = None
    try:
        while True:
            try:
                ready, _, _ = select.select(fds, [], [], 0.2)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds.remove(0)
            if status is None:
                pid, st = os.waitpid(child_pid, os.WNOHANG)
                if pid:
                    status = st
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    if status is None:
        _, status = os.waitpid(child_pid, 0)
    return status
