"""podman driving the runtime under test (``OCIRT_PODMAN_RUNTIME``, default:
this tree's ocirt) through conmon, the way users run containers."""
import json
import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from integration.podman_support import IMAGE, make_podman

pytestmark = [pytest.mark.podman,
              pytest.mark.skipif(not shutil.which("podman") or not shutil.which("conmon"),
                                 reason="podman and conmon are not installed")]


@pytest.fixture(scope="module")
def podman():
    pm = make_podman()
    try:
        pm.import_image()
        yield pm
    finally:
        pm.cleanup()


@pytest.fixture
def running(podman):
    """A detached container that keeps running; removed afterwards."""
    made = []

    def start(*run_args, command=("sleep", "600")):
        res = podman("run", "-d", *run_args, IMAGE, *command)
        assert res.returncode == 0, res.stderr
        cid = res.stdout.strip()
        made.append(cid)
        return cid
    yield start
    for cid in made:
        podman("rm", "-f", "-t", "0", cid)


def inspect(podman, cid):
    return json.loads(podman("inspect", cid, check=True).stdout)[0]


def wait_exited(podman, cid, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = inspect(podman, cid)["State"]
        if not state["Running"]:
            return state
        time.sleep(0.1)
    raise AssertionError(f"container {cid} still running after {timeout}s")


def test_run_rm_output_and_exit_code(podman):
    """`podman run --rm`: the command's output and exit status 0."""
    res = podman("run", "--rm", IMAGE, "echo", "hello from the container")
    assert (res.returncode, res.stdout) == (0, "hello from the container\n"), res.stderr


def test_run_nonzero_exit_code(podman):
    """`podman run` returns the container process's non-zero exit status."""
    res = podman("run", "--rm", IMAGE, "sh", "-c", "echo before; exit 42")
    assert (res.returncode, res.stdout) == (42, "before\n"), res.stderr


def test_run_detached_and_logs(podman, running):
    """`podman run -d` returns at once; `podman logs` shows stdout and stderr."""
    cid = running(command=("sh", "-c", "echo to-out; echo to-err >&2; sleep 600"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logs = podman("logs", cid)
        if "to-out" in logs.stdout and "to-err" in logs.stderr:
            break
        time.sleep(0.1)
    assert "to-out" in logs.stdout and "to-err" in logs.stderr, (logs.stdout, logs.stderr)
    assert inspect(podman, cid)["State"]["Running"]


def test_exec(podman, running):
    """`podman exec`: output, exit codes, -e, --user, --workdir."""
    cid = running()
    res = podman("exec", cid, "echo", "exec-output")
    assert (res.returncode, res.stdout) == (0, "exec-output\n"), res.stderr
    assert podman("exec", cid, "sh", "-c", "exit 7").returncode == 7
    assert podman("exec", "-e", "CONF_VAR=exec-env", cid, "sh", "-c", "echo $CONF_VAR").stdout == "exec-env\n"
    assert podman("exec", "--user", "1000:1000", cid, "sh", "-c", "id -u; id -g").stdout == "1000\n1000\n"
    assert podman("exec", "--workdir", "/tmp", cid, "pwd").stdout == "/tmp\n"


def test_exec_missing_command(podman, running):
    """`podman exec` of a missing binary: 127 (podman maps the runtime's
    "no such file or directory")."""
    cid = running()
    res = podman("exec", cid, "/no/such/command")
    assert res.returncode == 127, (res.returncode, res.stderr)


def test_stop_kills_after_timeout(podman, running):
    """`podman stop -t 1`: a process ignoring SIGTERM is SIGKILLed after the
    timeout (exit code 137)."""
    cid = running(command=("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"))
    began = time.monotonic()
    res = podman("stop", "-t", "1", cid)
    elapsed = time.monotonic() - began
    assert res.returncode == 0, res.stderr
    state = wait_exited(podman, cid)
    assert state["ExitCode"] == 137
    assert 0.9 < elapsed < 15, elapsed


def test_stop_graceful(podman, running):
    """`podman stop`: a process handling SIGTERM exits with its own status."""
    cid = running(command=("sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"))
    assert podman("stop", "-t", "10", cid).returncode == 0
    assert wait_exited(podman, cid)["ExitCode"] == 3


def test_kill(podman, running):
    """`podman kill`: SIGKILL by default; the container stops."""
    cid = running()
    assert podman("kill", cid).returncode == 0
    assert wait_exited(podman, cid)["ExitCode"] == 137


def test_rm_force_running(podman, running):
    """`podman rm -f` removes a running container."""
    cid = running()
    res = podman("rm", "-f", "-t", "0", cid)
    assert res.returncode == 0, res.stderr
    assert podman("container", "exists", cid).returncode == 1


def run_with_tty(podman, *args, timeout=30):
    """Run podman on a pty, as from a terminal; returns (status, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(podman.cmd(*args), env=podman.env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        status = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, out.decode(errors="replace").replace("\r\n", "\n")


def test_run_tty(podman):
    """`podman run -t` from a terminal: the process's stdio is a pty
    (/dev/pts/N) and isatty."""
    status, out = run_with_tty(podman, "run", "--rm", "-t", IMAGE, "sh", "-c",
                               "tty; test -t 0 && test -t 1 && echo isatty")
    assert status == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("/dev/pts/"), out
    assert "isatty" in lines


def test_run_user(podman):
    """`podman run --user uid:gid`."""
    res = podman("run", "--rm", "--user", "1000:1000", IMAGE, "sh", "-c", "id -u; id -g")
    assert res.stdout == "1000\n1000\n", res.stderr


def test_run_workdir(podman):
    """`podman run --workdir`."""
    assert podman("run", "--rm", "--workdir", "/etc", IMAGE, "pwd").stdout == "/etc\n"


def test_run_env(podman):
    """`podman run -e`."""
    res = podman("run", "--rm", "-e", "CONF_A=alpha", "-e", "CONF_B=beta gamma", IMAGE, "sh", "-c",
                 'echo "$CONF_A|$CONF_B"')
    assert res.stdout == "alpha|beta gamma\n", res.stderr


def test_bind_volume(podman, tmp_path):
    """`podman run -v hostdir:/data`: host content visible, writes reach the host."""
    host_dir = tmp_path / "vol"
    host_dir.mkdir()
    (host_dir / "from-host").write_text("host-data\n")
    res = podman("run", "--rm", "-v", f"{host_dir}:/data", IMAGE, "sh", "-c",
                 "cat /data/from-host; echo ctr-data > /data/from-ctr")
    assert res.stdout == "host-data\n", res.stderr
    assert (host_dir / "from-ctr").read_text() == "ctr-data\n"


def test_read_only(podman):
    """`podman run --read-only`: the root filesystem is read-only (/tmp,
    /run stay writable tmpfs, as podman mounts them)."""
    res = podman("run", "--rm", "--read-only", IMAGE, "sh", "-c",
                 "touch /rootfile 2>&1 || echo denied; touch /tmp/ok && echo tmp-writable")
    assert "Read-only file system" in res.stdout and "denied" in res.stdout, res.stdout + res.stderr
    assert "tmp-writable" in res.stdout


def interfaces(text):
    return sorted(line.split(":")[0].strip() for line in text.splitlines()[2:])


def test_network_none(podman):
    """`podman run --network=none`: only the loopback interface."""
    res = podman("run", "--rm", "--network=none", IMAGE, "cat", "/proc/net/dev")
    assert interfaces(res.stdout) == ["lo"], res.stderr


def test_network_default(podman):
    """Default network (netavark bridge): an interface besides lo, with an
    IPv4 address."""
    res = podman("run", "--rm", IMAGE, "sh", "-c", "cat /proc/net/dev; echo ---; ip -4 -o addr show")
    net_dev, _, addrs = res.stdout.partition("---\n")
    assert [n for n in interfaces(net_dev) if n != "lo"], res.stdout + res.stderr
    assert any(line.split()[1] != "lo" and " inet " in line for line in addrs.splitlines()), res.stdout


def test_pid_host(podman):
    """`podman run --pid=host`: the container shares the host pid namespace."""
    res = podman("run", "--rm", "--pid=host", IMAGE, "readlink", "/proc/self/ns/pid")
    assert res.stdout.strip() == os.readlink("/proc/self/ns/pid"), res.stderr
    res = podman("run", "--rm", IMAGE, "readlink", "/proc/self/ns/pid")
    assert res.stdout.strip() != os.readlink("/proc/self/ns/pid"), res.stderr


def test_run_missing_command_127(podman):
    """podman system test 030-run: `podman run IMG /no/such/command` exits
    127 with "no such file or directory" (derived from the runtime's error)."""
    res = podman("run", "--rm", IMAGE, "/no/such/command")
    assert res.returncode == 127, (res.returncode, res.stderr)
    assert "no such file or directory" in res.stderr.lower(), res.stderr


def test_run_directory_126(podman):
    """podman system test 030-run: `podman run IMG /etc` exits 126
    (permission denied / is a directory)."""
    res = podman("run", "--rm", IMAGE, "/etc")
    assert res.returncode == 126, (res.returncode, res.stderr)
    assert any(s in res.stderr.lower() for s in ("permission denied", "is a directory")), res.stderr


def test_run_interactive_stdin(podman):
    """`podman run -i`: stdin reaches the container through conmon."""
    res = podman("run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo eof", input="piped line\n")
    assert res.stdout == "piped line\neof\n", res.stderr


def test_exec_tty(podman, running):
    """`podman exec -t` from a terminal: the exec'd process gets its own pty
    (runtime `exec --tty --console-socket`)."""
    cid = running()
    status, out = run_with_tty(podman, "exec", "-t", cid, "sh", "-c", "tty; test -t 1 && echo isatty")
    assert status == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("/dev/pts/") and "isatty" in lines, out


def test_ulimit(podman):
    """`podman run --ulimit nofile=500:600` → process.rlimits.  (An explicit
    --ulimit replaces default_ulimits, and podman then asks for nproc
    1048576, which root cannot grant here: pass nproc too.)"""
    res = podman("run", "--rm", "--ulimit", "nofile=500:600", "--ulimit", "nproc=1024:1024", IMAGE, "sh", "-c", "ulimit -Sn; ulimit -Hn")
    assert res.stdout == "500\n600\n", res.stderr


def test_hostname(podman):
    """`podman run --hostname` → a UTS namespace with that name."""
    res = podman("run", "--rm", "--hostname", "conf-podman-host", IMAGE, "hostname")
    assert res.stdout == "conf-podman-host\n", res.stderr


def test_capabilities(podman):
    """`--cap-drop all --cap-add NET_ADMIN` → exactly CAP_NET_ADMIN (bit 12)
    effective."""
    res = podman("run", "--rm", "--cap-drop", "all", "--cap-add", "NET_ADMIN", IMAGE, "grep", "CapEff",
                 "/proc/self/status")
    assert int(res.stdout.split()[1], 16) == 1 << 12, res.stdout + res.stderr


def test_sysctl_and_tmpfs(podman):
    """`--sysctl` and `--tmpfs` → linux.sysctl and a tmpfs mount."""
    res = podman("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--tmpfs", "/scratch:size=1m", IMAGE,
                 "sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; grep ' /scratch ' /proc/self/mountinfo")
    lines = res.stdout.splitlines()
    assert lines[0] == "1" and "tmpfs" in lines[1], res.stdout + res.stderr


def test_uidmap(podman):
    """`--uidmap/--gidmap` → a user namespace with those mappings."""
    res = podman("run", "--rm", "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536", IMAGE,
                 "cat", "/proc/self/uid_map")
    assert res.stdout.split() == ["0", "200000", "65536"], res.stderr


def test_idmapped_volume(podman, tmp_path):
    """`--uidmap` + `-v SRC:DST:idmap`: the volume is an idmapped mount, so the
    host's root-owned file belongs to the container's root (not to nobody)."""
    src = tmp_path / "vol"
    src.mkdir()
    (src / "f").write_text("x\n")
    os.chown(src / "f", 0, 0)
    res = podman("run", "--rm", "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536",
                 "-v", f"{src}:/data:idmap", IMAGE, "stat", "-c", "%u:%g", "/data/f")
    assert res.stdout.strip() == "0:0", res.stdout + res.stderr


def test_privileged(podman):
    """`--privileged`: every capability the host has, and host devices."""
    res = podman("run", "--rm", "--privileged", IMAGE, "sh", "-c",
                 "grep CapBnd /proc/self/status; ls /dev")
    with open("/proc/self/status") as f:
        host_bnd = next(line.split()[1] for line in f if line.startswith("CapBnd"))
    assert res.stdout.splitlines()[0].split()[1] == host_bnd, res.stdout + res.stderr
    assert "loop0" in res.stdout.split() or "kvm" in res.stdout.split(), res.stdout


def test_restart(podman, running):
    """`podman restart`: a stopped container is created and started again."""
    cid = running()
    assert podman("restart", "-t", "0", cid).returncode == 0
    assert inspect(podman, cid)["State"]["Running"]
    assert podman("exec", cid, "true").returncode == 0


def test_exec_detached(podman, running):
    """`podman exec -d` → runtime `exec --detach --pid-file`."""
    cid = running()
    assert podman("exec", "-d", cid, "sh", "-c", "echo detached > /tmp/marker").returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if podman("exec", cid, "cat", "/tmp/marker").stdout == "detached\n":
            break
        time.sleep(0.1)
    assert podman("exec", cid, "cat", "/tmp/marker").stdout == "detached\n"


def test_pause_unpause(podman, running):
    """`podman pause/unpause` → runtime `pause`/`resume` (freezer)."""
    cid = running(command=("sh", "-c", "while :; do date +%s%N > /tmp/tick; sleep 0.05; done"))
    res = podman("pause", cid)
    assert res.returncode == 0, res.stderr
    assert inspect(podman, cid)["State"]["Status"] == "paused"
    res = podman("unpause", cid)
    assert res.returncode == 0, res.stderr
    assert inspect(podman, cid)["State"]["Status"] == "running"


def test_memory_and_pids_limits(podman):
    """`--memory 64m --pids-limit 77` → linux.resources applied to the
    container's cgroup, as the container sees it (cgroup v1 here)."""
    script = ("for c in memory/memory.limit_in_bytes pids/pids.max; do "
              "f=/sys/fs/cgroup/$c; p=$(grep \":${c%%/*}:\" /proc/self/cgroup | cut -d: -f3); "
              "[ -f /sys/fs/cgroup/${c%%/*}$p/${c#*/} ] && f=/sys/fs/cgroup/${c%%/*}$p/${c#*/}; cat $f; done")
    res = podman("run", "--rm", "--memory", "64m", "--pids-limit", "77", IMAGE, "sh", "-c", script)
    assert res.stdout.split() == ["67108864", "77"], res.stdout + res.stderr


def test_network_host(podman):
    """`podman run --network=host`: the host's network namespace."""
    res = podman("run", "--rm", "--network=host", IMAGE, "readlink", "/proc/self/ns/net")
    assert res.stdout.strip() == os.readlink("/proc/self/ns/net"), res.stderr


def test_init(podman):
    """`podman run --init`: catatonit is bind-mounted in (as /run/podman-init)
    and runs as pid 1, the command as its child."""
    res = podman("run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/comm; echo $$")
    lines = res.stdout.split()
    assert lines[0] in ("catatonit", "podman-init") and lines[1] != "1", res.stdout + res.stderr
