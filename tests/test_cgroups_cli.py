"""pause/resume/update/ps/events and kill --all through the real ocirt CLI
and a real busybox container."""
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from tests.support import make_bundle, ocirt_bin, run_ocirt

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


@pytest.fixture
def container(tmp_path):
    """A started container running ``sleep``; yields (root, id, state dict)."""
    root = str(tmp_path / "root")
    cid = f"cg-{uuid.uuid4().hex[:8]}"
    bundle = make_bundle(str(tmp_path / "bundle"), args=("sh", "-c", "sleep 300 & sleep 301 & wait"))
    run_ocirt("create", "--bundle", bundle, cid, root=root, check=True)
    run_ocirt("start", cid, root=root, check=True)
    with open(os.path.join(root, cid, "state.json")) as f:
        state = json.load(f)
    yield root, cid, state
    run_ocirt("delete", "--force", cid, root=root)
    assert not any(os.path.exists(p) for p in state["cgroup"]["paths"].values())


def _status(root, cid):
    return json.loads(run_ocirt("state", cid, root=root, check=True).stdout)["status"]


def _procs(root, cid):
    return json.loads(run_ocirt("ps", "--format", "json", cid, root=root, check=True).stdout)


def _wait_procs(root, cid, n):
    deadline = time.monotonic() + 5
    while len(_procs(root, cid)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return _procs(root, cid)


def test_pause_resume(container):
    root, cid, state = container
    run_ocirt("pause", cid, root=root, check=True)
    assert _status(root, cid) == "paused"
    res = run_ocirt("pause", cid, root=root)
    assert res.returncode == 1 and "already paused" in res.stderr
    run_ocirt("resume", cid, root=root, check=True)
    assert _status(root, cid) == "running"
    res = run_ocirt("resume", cid, root=root)
    assert res.returncode == 1 and "container not paused" in res.stderr


def test_ps_json_and_table(container):
    root, cid, state = container
    pids = _wait_procs(root, cid, 3)
    assert state["pid"] in pids and len(pids) == 3
    table = run_ocirt("ps", cid, root=root, check=True).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"]
    assert sorted(int(line.split()[1]) for line in table[1:]) == pids
    custom = run_ocirt("ps", cid, "-o", "pid,comm", root=root, check=True).stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 4


def test_kill_all(container):
    root, cid, state = container
    pids = _wait_procs(root, cid, 3)
    run_ocirt("kill", "--all", cid, "KILL", root=root, check=True)
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in pids):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_update_flags_and_resources(container):
    root, cid, state = container
    paths = state["cgroup"]["paths"]
    run_ocirt("update", "--memory", "64m", "--pids-limit", "50", "--cpu-quota", "20000", "--cpu-period", "100000",
              "--cpu-share", "256", cid, root=root, check=True)
    if "memory" in paths:
        assert open(paths["memory"] + "/memory.limit_in_bytes").read().strip() == str(64 << 20)
        assert open(paths["pids"] + "/pids.max").read().strip() == "50"
        assert open(paths["cpu"] + "/cpu.cfs_quota_us").read().strip() == "20000"
        assert open(paths["cpu"] + "/cpu.shares").read().strip() == "256"
    res = run_ocirt("update", "--resources", "-", cid, root=root,
                    input=json.dumps({"pids": {"limit": 77}, "memory": {"limit": 100 << 20, "swap": 200 << 20}}).encode())
    assert res.returncode == 0, res.stderr
    if "pids" in paths:
        assert open(paths["pids"] + "/pids.max").read().strip() == "77"
    with open(state["config_file"]) as f:
        saved = json.load(f)["linux"]["resources"]
    assert saved["pids"] == {"limit": 77}
    assert saved["memory"]["limit"] == 100 << 20 and saved["cpu"]["quota"] == 20000
    bad = run_ocirt("update", "--memory", "lots", cid, root=root)
    assert bad.returncode == 1 and "--memory" in bad.stderr and "Traceback" not in bad.stderr


def test_events_stats_once(container):
    root, cid, state = container
    res = run_ocirt("events", "--stats", cid, root=root, check=True)
    event = json.loads(res.stdout)
    assert event["type"] == "stats" and event["id"] == cid
    assert set(event["data"]) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert event["data"]["pids"]["current"] >= 1


def test_events_stream_with_oom(tmp_path):
    root = str(tmp_path / "root")
    cid = f"oom-{uuid.uuid4().hex[:8]}"

    def limit(config):
        config["linux"].setdefault("resources", {})["memory"] = {"limit": 8 << 20, "swap": 8 << 20}
    # The child of sh eats memory once released by the marker file, sh stays.
    bundle = make_bundle(str(tmp_path / "bundle"), mutate=limit, args=(
        "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                    "(x=a; while true; do x=$x$x$x$x; done) ; sleep 300"))
    run_ocirt("create", "--bundle", bundle, cid, root=root, check=True)
    run_ocirt("start", cid, root=root, check=True)
    events = subprocess.Popen([ocirt_bin(), "--root", root, "events", "--interval", "200ms", cid],
                              stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(events.stdout.readline())
        assert first["type"] == "stats"
        open(os.path.join(bundle, "rootfs", "tmp", "go"), "w").close()
        deadline = time.monotonic() + 15
        while True:
            assert time.monotonic() < deadline, "no oom event"
            event = json.loads(events.stdout.readline())
            if event["type"] == "oom":
                assert event == {"type": "oom", "id": cid}
                break
    finally:
        events.kill()
        events.wait()
        run_ocirt("delete", "--force", cid, root=root)


def test_delete_after_sigkill_removes_every_cgroup(tmp_path):
    root = str(tmp_path / "root")
    cid = f"k-{uuid.uuid4().hex[:8]}"

    def relative(config):
        config["linux"]["cgroupsPath"] = f"ocirt-rel/{cid}"
    bundle = make_bundle(str(tmp_path / "bundle"), args=("sleep", "300"), mutate=relative)
    run_ocirt("create", "--bundle", bundle, cid, root=root, check=True)
    run_ocirt("start", cid, root=root, check=True)
    with open(os.path.join(root, cid, "state.json")) as f:
        state = json.load(f)
    assert all(p.endswith(f"ocirt-rel/{cid}") for p in state["cgroup"]["paths"].values())
    os.kill(state["pid"], signal.SIGKILL)
    run_ocirt("delete", cid, root=root, check=True)
    assert not any(os.path.exists(p) for p in state["cgroup"]["paths"].values())


def test_verbs_on_missing_container(tmp_path):
    for verb in ("pause", "resume", "update", "ps", "events"):
        res = run_ocirt(verb, "nope", root=str(tmp_path))
        assert res.returncode == 1 and "container does not exist" in res.stderr, (verb, res.stderr)


def test_cgroup_namespace_shows_the_container_its_own_root(tmp_path):
    def cgroupns(config):
        namespaces = config["linux"]["namespaces"]
        if not any(n["type"] == "cgroup" for n in namespaces):
            namespaces.append({"type": "cgroup"})
    bundle = make_bundle(str(tmp_path / "bundle"), args=("cat", "/proc/self/cgroup"), mutate=cgroupns)
    res = run_ocirt("run", "--bundle", bundle, f"ns-{uuid.uuid4().hex[:8]}", root=str(tmp_path / "root"))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines and all(line.endswith(":/") for line in lines), lines


def test_update_errors_and_device_rules(container):
    root, cid, state = container
    run_ocirt("update", "--memory", "32m", "--memory-swap", "48m", cid, root=root, check=True)
    res = run_ocirt("update", "--memory", "100m", cid, root=root)
    assert res.returncode == 1 and "set --memory-swap as well" in res.stderr
    res = run_ocirt("update", "--l3-cache-schema", "L3:0=f", cid, root=root)
    assert res.returncode == 1 and "Intel RDT" in res.stderr
    devices = state["cgroup"]["paths"].get("devices")
    if devices:
        before = open(devices + "/devices.list").read()
        # podman resends the configured rules: nothing changes
        with open(state["config_file"]) as f:
            configured = json.load(f)["linux"]["resources"].get("devices", [])
        res = run_ocirt("update", "-r", "-", cid, root=root, input=json.dumps({"devices": configured}).encode())
        assert res.returncode == 0, res.stderr
        assert open(devices + "/devices.list").read() == before
        # a changed rule set is applied, completed with the default device rules
        rules = configured + [{"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}]
        res = run_ocirt("update", "-r", "-", cid, root=root, input=json.dumps({"devices": rules}).encode())
        assert res.returncode == 0, res.stderr
        listed = open(devices + "/devices.list").read().splitlines()
        assert "c 10:200 rwm" in listed and "c 1:3 rwm" in listed


def test_update_of_a_stopped_container_fails(tmp_path):
    root = str(tmp_path / "root")
    cid = f"st-{uuid.uuid4().hex[:8]}"
    bundle = make_bundle(str(tmp_path / "bundle"), args=("sleep", "300"))
    run_ocirt("create", "--bundle", bundle, cid, root=root, check=True)
    with open(os.path.join(root, cid, "state.json")) as f:
        pid = json.load(f)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while json.loads(run_ocirt("state", cid, root=root, check=True).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for verb in (["update", "--pids-limit", "5"], ["pause"], ["events", "--stats"]):
        res = run_ocirt(*verb, cid, root=root)
        assert res.returncode == 1 and "container not running" in res.stderr, (verb, res.stderr)
    run_ocirt("delete", cid, root=root, check=True)
