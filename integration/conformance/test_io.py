"""stdio, inherited fds and the console socket: runtime-tools
command-line-interface.md "create", runtime-linux.md "File descriptors",
reference §6.1 (runc's console-socket protocol) and §6.3 (LISTEN_FDS)."""
import contextlib
import json
import os
import select
import socket
import stat
import subprocess
import tempfile
import threading
import time

from integration.conformance.harness import sh


def test_stdio_passthrough(rt):
    """CLI spec "create" with terminal=false: the runtime passes its stdio to
    the container untouched; the runtime reads nothing from stdin (the
    container's process gets all of it)."""
    stdin_path = os.path.join(rt.workdir, "stdin.txt")
    with open(stdin_path, "w") as f:
        f.write("line one\nline two\n")
    ctr = rt.container(sh("cat; echo to-stderr >&2"))
    with open(stdin_path) as stdin:
        out = ctr.run(stdin=stdin)
    assert out == "line one\nline two\n"
    assert ctr.stderr() == "to-stderr\n"


def test_only_stdio_inherited(rt):
    """runtime-linux.md "File descriptors": by default only stdin, stdout and
    stderr are open in the container process; a host fd given to the runtime
    without --preserve-fds does not leak in."""
    leak_r, leak_w = os.pipe()
    try:
        ctr = rt.container(["ls", "/proc/self/fd"])
        out = ctr.run(pass_fds=(leak_r, leak_w))
    finally:
        os.close(leak_r)
        os.close(leak_w)
    # ls itself holds one fd open for the directory it lists
    assert sorted(int(fd) for fd in out.split()) in ([0, 1, 2], [0, 1, 2, 3])


def test_preserve_fds(rt):
    """runc `--preserve-fds N` (reference §6.3): fds 3..3+N-1 of the runtime
    are passed to the container process as the same numbers."""
    paths = [os.path.join(rt.workdir, f"fd{i}.txt") for i in (3, 4)]
    # open them as exactly fds 3 and 4 of the runtime process
    wrap = ["/bin/sh", "-c", f'exec 3>>{paths[0]} 4>>{paths[1]} && exec "$@"', "sh"]
    ctr = rt.container(sh("echo three >&3; echo four >&4; test -e /proc/self/fd/5 && echo fd5-leaked; echo done"))
    out = ctr.run("--preserve-fds", "2", wrap=wrap)
    assert out == "done\n"
    assert [open(p).read() for p in paths] == ["three\n", "four\n"]


def test_listen_fds(rt):
    """runc socket activation (reference §6.3, CLI spec "create"): with
    LISTEN_FDS=1 and LISTEN_PID = the runtime's pid, fd 3 is passed on and
    the container gets LISTEN_FDS=1, LISTEN_PID=1."""
    path = os.path.join(rt.workdir, "listen.txt")
    wrap = ["/bin/sh", "-c", f'export LISTEN_FDS=1 LISTEN_PID=$$; exec 3>>{path} && exec "$@"', "sh"]
    ctr = rt.container(sh("echo via-fd3 >&3; echo LISTEN_FDS=$LISTEN_FDS LISTEN_PID=$LISTEN_PID"))
    out = ctr.run(wrap=wrap)
    assert out == "LISTEN_FDS=1 LISTEN_PID=1\n"
    with open(path) as f:
        assert f.read() == "via-fd3\n"


class ConsoleListener(threading.Thread):
    """A client's console socket: accept one connection, receive the message
    and the fds sent with it (runc: the pty name, one SCM_RIGHTS fd)."""

    def __init__(self, path, timeout=20):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(timeout)
        self.message, self.fds, self.error = None, [], None

    def run(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                self.message, self.fds, _flags, _addr = socket.recv_fds(conn, 4096, 8)
        except OSError as e:
            self.error = e
        finally:
            self.sock.close()


@contextlib.contextmanager
def socket_in_tmp(prefix, name):
    """A socket path in a fresh directory under /tmp (sun_path holds 108
    bytes), removed with whatever was bound there afterwards."""
    sock_dir = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    sock_path = os.path.join(sock_dir, name)
    try:
        yield sock_path
    finally:
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass
        os.rmdir(sock_dir)


def read_until(fd, needle, timeout=10.0):
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:   # EIO: the container side closed
                break
            if not chunk:
                break
            data += chunk
    return data


def test_console_socket(rt):
    """runc console socket (reference §6.1; config.md `terminal`): with
    terminal=true and --console-socket PATH, the runtime connects to PATH
    and sends exactly one fd, a pty master, with SCM_RIGHTS; the container's
    stdio is the pty slave, and /dev/console exists (config-linux.md
    "Default Devices": /dev/console when terminal is true) and the pty has
    `consoleSize` (config.md "Console size")."""
    with socket_in_tmp("conf-sock-", "console.sock") as sock_path:
        listener = ConsoleListener(sock_path)
        listener.start()
        ctr = rt.container(sh("tty; test -t 0 && test -t 1 && echo isatty; "
                              "test -c /dev/console && echo console-chardev; stty size; echo console-done"),
                           terminal=True,
                           mutate=lambda c: c["process"].update(consoleSize={"height": 33, "width": 111}))
        try:
            ctr.create("--console-socket", sock_path)
            listener.join(20)
            assert listener.error is None and listener.message is not None, listener.error
            assert len(listener.fds) == 1, listener.fds
            master = listener.fds[0]
            st = os.fstat(master)
            # a pty master is the ptmx character device (5:2) of its devpts
            assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (5, 2)
            ctr.start()
            out = read_until(master, b"console-done").decode(errors="replace").replace("\r\n", "\n")
            ctr.wait()
            ctr.delete()
        finally:
            for fd in listener.fds:
                os.close(fd)
    lines = out.splitlines()
    assert lines[0].startswith("/dev/pts/") or lines[0] == "/dev/console", out
    assert lines[1:5] == ["isatty", "console-chardev", "33 111", "console-done"], out


def test_terminal_without_console_socket_fails(rt):
    """runc CLI (reference §6.1): terminal=true on a detached create without
    --console-socket is refused ("cannot allocate tty if runc will detach
    without setting console socket")."""
    ctr = rt.container(["true"], terminal=True)
    assert ctr.create(check=False).returncode != 0


def notify_mkdir(sock_path, metadata):
    """A config mutation: mkdir goes to the agent at sock_path (SCMP_ACT_NOTIFY)."""
    def mutate(config):
        config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock_path, "listenerMetadata": metadata,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    return mutate


def test_seccomp_listener_path(rt):
    """config-linux.md "Seccomp" `listenerPath` (reference §10): with an
    SCMP_ACT_NOTIFY rule the runtime connects to `listenerPath` and sends one
    container-process-state JSON with the seccomp notify fd in SCM_RIGHTS.
    Once the agent closes that fd, the notified syscall fails (ENOSYS) and the
    process carries on."""
    with socket_in_tmp("conf-seccomp-", "agent.sock") as sock_path:
        listener = ConsoleListener(sock_path, timeout=8)
        listener.start()
        ctr = rt.container(sh("mkdir /tmp/d 2>&1; echo after-mkdir"), mutate=notify_mkdir(sock_path, "conformance"))
        try:
            ctr.create()
            ctr.start()
            listener.join(10)
            assert listener.error is None and listener.message, (listener.error, ctr.stdout(), ctr.stderr())
            state = json.loads(listener.message)
            assert len(listener.fds) == 1 and state["fds"] == ["seccompFd"]
            assert state["metadata"] == "conformance" and state["state"]["id"] == ctr.id
            assert state["pid"] == ctr.pid
        finally:
            for fd in listener.fds:
                os.close(fd)
    ctr.wait()
    assert ctr.stdout() == "mkdir: can't create directory '/tmp/d': Function not implemented\nafter-mkdir\n"


def test_seccomp_listener_path_on_exec(rt):
    """`listenerPath` also covers processes started by `exec`: the agent gets
    a second connection whose `pid` is the exec'd process as the runtime sees
    it (runc sends the same for `runc exec`), and the notified syscall of that
    process waits for the agent."""
    with socket_in_tmp("conf-seccomp-", "agent.sock") as sock_path:
        first = ConsoleListener(sock_path, timeout=8)
        first.start()
        ctr = rt.container(["sleep", "30"], mutate=notify_mkdir(sock_path, "exec-case"))
        fds = []
        try:
            ctr.create()
            ctr.start()
            first.join(10)
            assert first.error is None and first.message, (first.error, ctr.stderr())
            fds += first.fds
            os.unlink(sock_path)
            second = ConsoleListener(sock_path, timeout=8)
            second.start()
            execd = subprocess.Popen([rt.binary, "--root", rt.root, "exec", ctr.id, "sh", "-c",
                                      "mkdir /tmp/e 2>&1; echo after-mkdir"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            second.join(10)
            assert second.error is None and second.message, (second.error, execd.poll())
            fds += second.fds
            state = json.loads(second.message)
            assert state["fds"] == ["seccompFd"] and len(second.fds) == 1
            assert state["metadata"] == "exec-case" and state["state"]["id"] == ctr.id
            assert state["pid"] != ctr.pid
            # that pid is the exec'd process: it becomes `sh -c "mkdir ..."` (the
            # fd may be sent just before execve), whose mkdir then waits for us
            deadline = time.monotonic() + 5
            while True:
                with open(f"/proc/{state['pid']}/cmdline", "rb") as f:
                    if b"mkdir /tmp/e" in f.read():
                        break
                assert time.monotonic() < deadline, "the listener's pid never became the exec'd process"
                time.sleep(0.02)
            for fd in second.fds:  # the agent goes away: the pending mkdir fails with ENOSYS
                os.close(fd)
                fds.remove(fd)
            out, err = execd.communicate(timeout=10)
            assert out == "mkdir: can't create directory '/tmp/e': Function not implemented\nafter-mkdir\n", err
        finally:
            for fd in fds:
                os.close(fd)
            ctr.kill(check=False)
