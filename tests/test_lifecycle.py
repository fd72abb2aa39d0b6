"""Lifecycle through the real CLI: create/start/state/kill/delete, run, exec."""
import json
import os
import subprocess
import threading
import time

import pytest

from tests.conftest import cid
from tests.support import ocirt_bin


def state(ocirt, c):
    res = ocirt("state", c)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_status(ocirt, c, want, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state(ocirt, c)["status"] == want:
            return
        time.sleep(0.02)
    raise AssertionError(f"{c} never became {want}: {state(ocirt, c)}")


def test_split_lifecycle(ocirt, bundle, tmp_path):
    c = cid()
    b = bundle(args=["sleep", "30"])
    pid_file = tmp_path / "init.pid"
    res = ocirt("create", "--bundle", b, "--pid-file", str(pid_file), c)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""  # nothing printed on create
    st = state(ocirt, c)
    assert st["status"] == "created" and isinstance(st["pid"], int) and st["pid"] > 0
    assert pid_file.read_text() == str(st["pid"])  # decimal, no newline
    assert st["bundle"] == b and st["created"].endswith("Z")
    assert ocirt("start", c).returncode == 0
    assert state(ocirt, c)["status"] == "running"
    assert "cannot start" in ocirt("start", c).stderr
    res = ocirt("delete", c)
    assert res.returncode == 1 and "not stopped" in res.stderr
    assert state(ocirt, c)["status"] == "running"  # a failed delete changes nothing
    assert ocirt("kill", c, "KILL").returncode == 0
    wait_status(ocirt, c, "stopped")
    assert state(ocirt, c)["pid"] == 0
    assert "container not running" in ocirt("kill", c).stderr
    assert ocirt("delete", c).returncode == 0
    assert "does not exist" in ocirt("state", c).stderr


def test_delete_of_created_container(ocirt, bundle):
    """runtime.md: delete of a container that is not stopped fails and changes
    nothing (runtime-tools `delete`); with --force it kills init."""
    c = cid()
    assert ocirt("create", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    pid = state(ocirt, c)["pid"]
    res = ocirt("delete", c)
    assert res.returncode == 1 and "not stopped" in res.stderr
    assert state(ocirt, c)["status"] == "created"
    assert ocirt("delete", "--force", c).returncode == 0
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[1][0] == "Z":
                break
        time.sleep(0.02)
    assert ocirt("list", "-q").stdout == ""


def test_delete_force(ocirt, bundle):
    c = cid()
    assert ocirt("run", "-d", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    assert ocirt("delete", "--force", c).returncode == 0
    assert ocirt("list", "-q").stdout == ""
    assert ocirt("delete", "--force", "never-existed").returncode == 0


def test_duplicate_id_exactly_one_wins(ocirt, bundle):
    c = cid()
    b = bundle(args=["sleep", "30"])
    results = []
    threads = [threading.Thread(target=lambda: results.append(ocirt("create", "--bundle", b, c))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.returncode == 0]
    assert len(ok) == 1
    for r in results:
        if r.returncode:
            assert "container with given ID already exists" in r.stderr
    assert ocirt("delete", "--force", c).returncode == 0


def test_run_exit_code_and_output(ocirt, bundle):
    res = ocirt("run", "--bundle", bundle(args=["sh", "-c", "echo out; echo err >&2; exit 7"]), cid())
    assert res.returncode == 7 and res.stdout == "out\n" and res.stderr == "err\n"
    assert ocirt("list", "-q").stdout == ""  # run deletes unless --keep


def test_run_killed_by_signal(ocirt, bundle, root):
    """The container's pid 1 ignores its own SIGKILL; the runtime's kill works."""
    c = cid()
    proc = subprocess.Popen([ocirt_bin(), "--root", root, "run", "--bundle", bundle(args=["sleep", "30"]), c],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while ocirt("state", c).returncode != 0 or state(ocirt, c)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert ocirt("kill", c, "9").returncode == 0
    assert proc.wait(timeout=10) == 128 + 9
    assert ocirt("list", "-q").stdout == ""


def test_run_forwards_signals(ocirt, bundle, root):
    c = cid()
    proc = subprocess.Popen([ocirt_bin(), "--root", root, "run", "--bundle",
                             bundle(args=["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"]), c],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while ocirt("state", c).returncode != 0 or state(ocirt, c)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)  # let the shell install its trap
    proc.terminate()
    assert proc.wait(timeout=10) == 42


def test_run_keep(ocirt, bundle):
    c = cid()
    assert ocirt("run", "--keep", "--bundle", bundle(), c).returncode == 0
    assert state(ocirt, c)["status"] == "stopped"
    assert ocirt("delete", c).returncode == 0


def test_missing_executable_wording(ocirt, bundle):
    """podman derives 127/126 from runc's wording of these errors."""
    res = ocirt("create", "--bundle", bundle(args=["/no/such/command"]), cid())
    assert res.returncode == 1 and "no such file or directory" in res.stderr
    res = ocirt("create", "--bundle", bundle(args=["nosuchcmd"]), cid())
    assert "executable file not found in $PATH" in res.stderr
    res = ocirt("create", "--bundle", bundle(args=["/etc"]), cid())
    assert "permission denied" in res.stderr
    assert ocirt("list", "-q").stdout == ""


def test_foreground_run_proxies_a_terminal(ocirt, bundle):
    """`run` in the foreground without --console-socket: the process gets a
    pty and run relays it to its own stdio, exiting with the status."""
    b = bundle(args=["sh", "-c", "tty; test -t 1 && echo isatty; exit 3"], terminal=True)
    res = ocirt("run", "--bundle", b, cid())
    assert res.returncode == 3, res.stderr
    lines = res.stdout.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1] == "isatty", res.stdout
    assert ocirt("list", "-q").stdout == ""


def test_init_failure_reported_even_while_the_runtime_is_busy(ocirt, bundle):
    """init fails its first mount while the runtime side still makes the
    cgroup: create must print init's error, not a broken pipe of its own."""
    def bad_mount(config):
        config["mounts"].insert(0, {"destination": "/bad", "type": "nosuchfs", "source": "none"})
    b = bundle(mutate=bad_mount)
    for _ in range(5):  # the race goes either way: every round must say the same
        res = ocirt("create", "--bundle", b, cid())
        assert res.returncode == 1
        assert res.stderr.count("level=error") == 1 and "mounts[0] (/bad)" in res.stderr, res.stderr
    assert ocirt("list", "-q").stdout == ""


def test_exec(ocirt, bundle, tmp_path):
    c = cid()
    assert ocirt("run", "-d", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    try:
        res = ocirt("exec", "--env", "X=42", "--cwd", "/tmp", c, "sh", "-c", 'echo $X $(pwd); exit 3')
        assert res.returncode == 3 and res.stdout == "42 /tmp\n"
        res = ocirt("exec", "-u", "1000:1000", c, "id")
        assert res.stdout.startswith("uid=1000")
        pid_file = tmp_path / "exec.pid"
        res = ocirt("exec", "-d", "--pid-file", str(pid_file), c, "sleep", "5")
        assert res.returncode == 0 and int(pid_file.read_text()) > 0
        proc = json.dumps({"args": ["sh", "-c", "cat /proc/self/status | grep NoNewPrivs"], "cwd": "/",
                           "noNewPrivileges": True})
        (tmp_path / "p.json").write_text(proc)
        res = ocirt("exec", "-p", str(tmp_path / "p.json"), c)
        assert "NoNewPrivs:\t1" in res.stdout
        res = ocirt("exec", c, "/no/such")
        assert res.returncode == 255 and "exec failed" in res.stderr and "no such file" in res.stderr
        # the exec'd process is in the container's pid namespace
        assert ocirt("exec", c, "sh", "-c", "echo $$").stdout.strip() != ""
        assert "sleep 30" in ocirt("exec", c, "ps").stdout
    finally:
        ocirt("delete", "-f", c)
    res = ocirt("exec", c, "true")
    assert res.returncode == 255


def test_console_socket(ocirt, bundle, tmp_path):
    """runc's protocol: one sendmsg with the pty name and the master fd."""
    import socket
    sock_path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    c = cid()
    b = bundle(args=["sh", "-c", "tty; stty size; echo done"], terminal=True)
    cfg = json.load(open(os.path.join(b, "config.json")))
    cfg["process"]["consoleSize"] = {"height": 33, "width": 101}
    json.dump(cfg, open(os.path.join(b, "config.json"), "w"))
    res = ocirt("create", "--bundle", b, "--console-socket", sock_path, c)
    assert res.returncode == 0, res.stderr
    conn, _ = server.accept()
    msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 2)
    assert msg.startswith(b"/dev/pts/") and len(fds) == 1
    master = fds[0]
    assert ocirt("start", c).returncode == 0
    out = b""
    deadline = time.monotonic() + 5
    while b"done" not in out and time.monotonic() < deadline:
        try:
            out += os.read(master, 4096)
        except OSError:
            break
    assert b"/dev/pts/0" in out and b"33 101" in out
    ocirt("delete", "-f", c)


def test_create_requires_console_socket_for_terminal(ocirt, bundle):
    res = ocirt("create", "--bundle", bundle(terminal=True), cid())
    assert res.returncode == 1 and "console socket" in res.stderr


def test_preserve_fds(ocirt, bundle, tmp_path):
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        target = 3 if w == 3 else None
        # fd 3 in the runtime must be the pipe: dup it there for the child
        res = subprocess.run([ocirt_bin(), "--root", str(tmp_path / "s"), "run", "--preserve-fds", "1", "--bundle",
                              bundle(args=["sh", "-c", "echo through-fd3 >&3; ls /proc/self/fd"]), cid()],
                             pass_fds=(3,), preexec_fn=lambda: os.dup2(w, 3), capture_output=True, text=True)
        os.close(w)
        assert res.returncode == 0, res.stderr
        assert os.read(r, 100) == b"through-fd3\n"
        assert sorted(res.stdout.split()) == ["0", "1", "2", "3", "4"]  # 4 = ls's own dir fd
    finally:
        os.close(r)
