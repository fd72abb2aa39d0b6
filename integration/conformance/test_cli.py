"""The runc CLI contract clients parse (reference oci-runtime-cli.md §1, §3,
§7, §8): not runtime-spec requirements, but what podman, CRI-O and the
containerd shim rely on."""
import json
import os

import pytest

from integration.conformance.harness import RFC3339, sh


def test_create_start_delete_print_nothing(rt):
    """Reference §1 rule 3: nothing on stdout/stderr for a successful create
    (under conmon they are the container's log streams), start or delete."""
    ctr = rt.container(["true"])
    ctr.create()
    assert ctr.stdout() == "" and ctr.stderr() == ""
    res = ctr.start()
    assert (res.stdout, res.stderr) == ("", "")
    ctr.wait()
    res = ctr.delete()
    assert (res.stdout, res.stderr) == ("", "")


def test_start_does_not_read_stdin(rt):
    """Reference §3 / CLI spec: `start` must not read stdin."""
    ctr = rt.container(sh("echo started"))
    ctr.create()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"left for the caller\n")
        res = rt.call("start", ctr.id, stdin=read_end)
        assert res.returncode == 0, res.stderr
        os.set_blocking(read_end, False)
        assert os.read(read_end, 100) == b"left for the caller\n"
    finally:
        os.close(read_end)
        os.close(write_end)
    ctr.wait()
    assert ctr.stdout() == "started\n"


def test_failed_create_logs_one_json_line(rt):
    """Reference §8.1: with `--log F --log-format json` a failed create writes
    exactly one line {"level":"error","msg":...,"time":RFC 3339} (podman
    unmarshals the whole file as one object) and the message to stderr."""
    log = os.path.join(rt.workdir, "oci-log")
    ctr = rt.container(["true"], mutate=lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 40000, "hard": 40000}]))
    with open(ctr.stderr_path, "wb") as err:
        res = rt.call("--log", log, "--log-format", "json", "create", "--bundle", ctr.bundle, ctr.id,
                      stdout=err, stderr=err)
    assert res.returncode == 1
    with open(log) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["msg"] and RFC3339.match(entry["time"]), entry
    assert ctr.stderr().strip(), "no message on stderr"


def test_list_json(rt):
    """Reference §3 `list --format json`: an array of state objects."""
    ctr = rt.container(["sleep", "600"])
    ctr.create()
    res = rt.call("list", "--format", "json", check=True)
    entries = json.loads(res.stdout)
    assert [e["id"] for e in entries] == [ctr.id]
    assert entries[0]["status"] == "created" and entries[0]["pid"] == ctr.pid


def test_ps_json(rt):
    """Reference §7.2 `ps --format json`: a bare JSON array of host pids
    (the containerd shim's `ps`)."""
    ctr = rt.container(["sleep", "600"])
    ctr.create()
    ctr.start()
    res = rt.call("ps", "--format", "json", ctr.id, check=True)
    assert json.loads(res.stdout) == [ctr.pid]


def test_features(rt):
    """Reference §11: `features` prints the features document with the two
    REQUIRED fields (CRI-O refuses it without them)."""
    res = rt.call("features", check=True)
    doc = json.loads(res.stdout)
    assert doc["ociVersionMin"] and doc["ociVersionMax"]


def test_version(rt):
    """Reference §7.2: `--version` first line `<name> version X`, then
    `commit:` and `spec:` lines (podman and CRI-O probe it)."""
    lines = rt.call("--version", check=True).stdout.splitlines()
    assert " version " in lines[0]
    assert any(line.startswith("spec:") for line in lines[1:])



def running_container(rt):
    ctr = rt.container(["sleep", "600"])
    ctr.create()
    ctr.start()
    return ctr


def test_exec_foreground(rt):
    """Reference §3 `exec`: the command runs in the container (its pid
    namespace, cwd, env, user flags applied) and `exec` exits with its
    status."""
    ctr = running_container(rt)
    res = rt.call("exec", "--cwd", "/etc", "--env", "CONF_X=exec-env", "--user", "1000:1000", ctr.id,
                  "sh", "-c", 'pwd; echo $CONF_X; id -u; readlink /proc/self/ns/pid; exit 7')
    assert res.returncode == 7, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:3] == ["/etc", "exec-env", "1000"]
    assert lines[3] == os.readlink(f"/proc/{ctr.pid}/ns/pid")


def test_exec_process_json(rt):
    """Reference §3 `exec -p process.json` (what conmon and the shim send)."""
    ctr = running_container(rt)
    path = os.path.join(rt.workdir, "process.json")
    with open(path, "w") as f:
        json.dump({"args": ["sh", "-c", "echo from-process-json; id -u"], "cwd": "/tmp", "env": ["PATH=/bin"],
                   "user": {"uid": 1000, "gid": 1000}, "terminal": False}, f)
    res = rt.call("exec", "--process", path, ctr.id)
    assert (res.returncode, res.stdout) == (0, "from-process-json\n1000\n"), res.stderr


def test_exec_detached_pid_file(rt):
    """Reference §3/§6.2 `exec --detach --pid-file`: returns at once with the
    exec'd process's host pid in the pid file."""
    ctr = running_container(rt)
    pid_file = os.path.join(rt.workdir, "exec.pid")
    with open(os.path.join(rt.workdir, "exec.err"), "w+") as err:
        # files, not pipes: the detached process keeps its stdio open
        res = rt.call("exec", "--detach", "--pid-file", pid_file, ctr.id, "sleep", "600", stdout=err, stderr=err)
        err.seek(0)
        assert res.returncode == 0, err.read()
    with open(pid_file) as f:
        pid = int(f.read())
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{ctr.pid}/ns/pid")


def test_exec_missing_binary_255(rt):
    """Reference §3/§8.2: when the runtime cannot start the exec'd process it
    exits 255, with "no such file or directory" in the message (podman: 127),
    and writes no pid file."""
    ctr = running_container(rt)
    pid_file = os.path.join(rt.workdir, "exec.pid")
    res = rt.call("exec", "--pid-file", pid_file, ctr.id, "/no/such/binary")
    assert res.returncode == 255, (res.returncode, res.stderr)
    assert "no such file or directory" in res.stderr.lower(), res.stderr
    assert not os.path.exists(pid_file)


def test_exec_stopped_container_fails(rt):
    """Reference §3 `exec`: refuses stopped containers."""
    ctr = rt.container(["true"])
    ctr.create()
    ctr.start()
    ctr.wait()
    assert rt.call("exec", ctr.id, "true").returncode != 0


def test_pause_resume(rt):
    """Reference §3 `pause`/`resume`: state reads `paused`, then `running`."""
    ctr = running_container(rt)
    rt.call("pause", ctr.id, check=True)
    assert ctr.state()["status"] == "paused"
    rt.call("resume", ctr.id, check=True)
    assert ctr.state()["status"] == "running"


def test_exec_cpu_affinity(rt):
    """config.md `execCPUAffinity` (runtime-spec 1.2.1) on an exec'd process:
    `final` is its CPU affinity once it runs."""
    if os.cpu_count() < 2:
        pytest.skip("needs two CPUs to tell the affinity apart")
    ctr = running_container(rt)
    path = os.path.join(rt.workdir, "process.json")
    with open(path, "w") as f:
        json.dump({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
                   "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {"final": "1"}}, f)
    res = rt.call("exec", "--process", path, ctr.id)
    assert res.stdout.split() == ["Cpus_allowed_list:", "1"], res.stdout + res.stderr
