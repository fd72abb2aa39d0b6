"""The cgroup driver on this host's real hierarchies (hybrid here: v1
controllers plus cgroup2 at /sys/fs/cgroup/unified), values read back from
the cgroup files.  The pure-v2 path is tests/test_cgroups_v2.py."""
import os
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ocirt import cgroups
from ocirt.cgroups.fs import read_file
from ocirt.errors import ConfigError, OcirtError

MODE, HIERARCHIES = cgroups.detect_layout()
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroup writes need root")


def _read(manager, controller, name):
    return read_file(os.path.join(manager.path(controller), name)).strip()


# ------------------------------------------------------------------------ layout

MOUNTINFO_HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:39 / /sys/fs/cgroup/misc rw,relatime - cgroup cgroup rw,name=other
"""


def test_layout_hybrid_from_mountinfo(tmp_path):
    f = tmp_path / "mountinfo"
    f.write_text(MOUNTINFO_HYBRID)
    mode, hs = cgroups.detect_layout(str(f))
    assert mode == "hybrid"
    keys = {h.key: h for h in hs}
    assert set(keys) == {"cpu,cpuacct", "memory", "name=systemd", "unified"}
    assert keys["cpu,cpuacct"].controllers == ("cpu", "cpuacct")
    assert keys["unified"].version == 2


def test_layout_v1_only_and_v2_only(tmp_path):
    f = tmp_path / "mountinfo"
    f.write_text("\n".join(MOUNTINFO_HYBRID.splitlines()[:3]) + "\n")
    assert cgroups.detect_layout(str(f))[0] == "v1"
    f.write_text("29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    mode, hs = cgroups.detect_layout(str(f))
    assert mode == "v2" and [h.mountpoint for h in hs] == ["/sys/fs/cgroup"]


def test_layout_skips_mounts_hidden_by_a_later_mount(tmp_path):
    # What a private mount namespace with cgroup2 mounted over /sys/fs/cgroup shows.
    f = tmp_path / "mountinfo"
    f.write_text(MOUNTINFO_HYBRID + "99 23 0:40 / /sys/fs/cgroup rw - cgroup2 none rw\n")
    mode, hs = cgroups.detect_layout(str(f))
    assert mode == "v2" and [h.mountpoint for h in hs] == ["/sys/fs/cgroup"]


def test_host_layout_is_detected():
    assert MODE in ("v1", "v2", "hybrid")
    if os.path.isdir("/sys/fs/cgroup/unified") and os.path.isdir("/sys/fs/cgroup/memory"):
        assert MODE == "hybrid"


# --------------------------------------------------------------------- cgroupsPath

def test_default_path_is_under_ocirt():
    m = cgroups.manager_for({}, "abc")
    assert all(p.endswith("/ocirt/abc") for p in m.paths.values())
    assert m.cgroups_path == "/ocirt/abc"


def test_absolute_path_is_relative_to_each_hierarchy_root():
    m = cgroups.manager_for({"cgroupsPath": "/libpod_parent/libpod-x"}, "x")
    for h in HIERARCHIES:
        assert m.paths[h.key] == os.path.join(h.mountpoint, "libpod_parent/libpod-x")


def test_relative_path_is_under_own_cgroup():
    own = cgroups._own_cgroups()
    m = cgroups.manager_for({"cgroupsPath": "k8s/pod1"}, "x")
    for h in HIERARCHIES:
        assert m.paths[h.key] == os.path.join(h.mountpoint, own.get(h.key, "/").lstrip("/"), "k8s/pod1")


@pytest.mark.parametrize("bad", ["/a/../b", "..", "/", "a/\n"])
def test_path_escaping_the_hierarchy_is_refused(bad):
    with pytest.raises(ConfigError, match="cgroupsPath"):
        cgroups.manager_for({"cgroupsPath": bad}, "x")


def test_systemd_driver_is_a_clear_error():
    with pytest.raises(OcirtError, match="systemd"):
        cgroups.manager_for({}, "x", systemd=True)


# ------------------------------------------------------------------------ lifecycle

def test_create_add_procs_and_round_trip(manager, sleeper):
    assert all(os.path.isdir(p) for p in manager.paths.values())
    for path in manager.paths.values():
        assert str(sleeper.pid) in read_file(os.path.join(path, "cgroup.procs")).split()
    again = cgroups.manager_from_dict(manager.to_dict())
    assert again.procs() == [sleeper.pid]
    assert again.paths == manager.paths and again.owned == manager.owned


def test_procs_includes_nested_cgroups(manager, sleeper):
    primary = manager._primary()
    nested = os.path.join(primary, "inner")
    os.mkdir(nested)
    child = subprocess.Popen(["sleep", "60"])
    try:
        with open(os.path.join(nested, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
        assert manager.procs() == sorted([sleeper.pid, child.pid])
    finally:
        child.kill()
        child.wait()


def test_freeze_thaw(manager, sleeper):
    assert not manager.is_frozen()
    manager.freeze()
    assert manager.is_frozen()
    state = read_file(f"/proc/{sleeper.pid}/stat")
    assert state  # still a process, just frozen
    manager.thaw()
    assert not manager.is_frozen()


def test_kill_all_reaches_every_process(manager, sleeper):
    other = subprocess.Popen(["sleep", "60"])
    manager.add_pid(other.pid)
    manager.kill_all(signal.SIGTERM)
    assert sleeper.wait(5) == -signal.SIGTERM
    assert other.wait(5) == -signal.SIGTERM


def test_kill_all_sigkill_of_a_frozen_cgroup(manager, sleeper):
    manager.freeze()
    manager.kill_all(signal.SIGKILL)
    assert sleeper.wait(5) == -signal.SIGKILL


def test_destroy_kills_leftovers_and_removes_nested_cgroups():
    m = cgroups.manager_for({"cgroupsPath": f"/ocirt-test/{uuid.uuid4().hex[:12]}"}, "t")
    m.create()
    proc = subprocess.Popen(["sleep", "60"])
    m.add_pid(proc.pid)
    os.mkdir(os.path.join(m._primary(), "made-by-container"))
    m.destroy()
    assert proc.wait(5) == -signal.SIGKILL
    assert not any(os.path.exists(p) for p in m.paths.values())
    m.destroy()  # a second destroy (delete retried) is fine


def test_destroy_after_sigkill_of_init(manager, sleeper):
    os.kill(sleeper.pid, signal.SIGKILL)
    manager.destroy()
    assert not any(os.path.exists(p) for p in manager.paths.values())


def test_joining_an_existing_cgroup_leaves_it_on_destroy(manager):
    join = cgroups.manager_for({"cgroupsPath": manager.cgroups_path}, "joiner")
    join.create()
    assert join.owned == []
    join.destroy()
    assert all(os.path.isdir(p) for p in manager.paths.values())


def test_a_frozen_existing_cgroup_is_refused(manager, sleeper):
    manager.freeze()
    try:
        with pytest.raises(OcirtError, match="frozen"):
            cgroups.manager_for({"cgroupsPath": manager.cgroups_path}, "joiner").create()
    finally:
        manager.thaw()


# ------------------------------------------------------------------------ resources

needs_v1 = pytest.mark.skipif(MODE == "v2", reason="host is pure cgroup v2 (covered by test_cgroups_v2)")


@needs_v1
def test_memory(manager, sleeper):
    mib = 1 << 20
    manager.apply_resources({"memory": {"limit": 64 * mib, "swap": 128 * mib, "reservation": 32 * mib,
                                        "swappiness": 7, "disableOOMKiller": True, "kernelTCP": 16 * mib,
                                        "useHierarchy": True}})
    assert _read(manager, "memory", "memory.limit_in_bytes") == str(64 * mib)
    assert _read(manager, "memory", "memory.memsw.limit_in_bytes") == str(128 * mib)
    assert _read(manager, "memory", "memory.soft_limit_in_bytes") == str(32 * mib)
    assert _read(manager, "memory", "memory.swappiness") == "7"
    assert "oom_kill_disable 1" in _read(manager, "memory", "memory.oom_control")
    assert _read(manager, "memory", "memory.kmem.tcp.limit_in_bytes") == str(16 * mib)
    # Growing both limits needs memsw written first; shrinking needs the reverse.
    manager.apply_resources({"memory": {"limit": 256 * mib, "swap": 512 * mib}})
    assert _read(manager, "memory", "memory.limit_in_bytes") == str(256 * mib)
    manager.apply_resources({"memory": {"limit": 16 * mib, "swap": 16 * mib}})
    assert _read(manager, "memory", "memory.memsw.limit_in_bytes") == str(16 * mib)
    manager.apply_resources({"memory": {"limit": -1, "swap": -1}})
    assert int(_read(manager, "memory", "memory.limit_in_bytes")) > 1 << 60


@needs_v1
def test_memory_check_before_update(manager):
    # Charges do not move with a process on v1: allocate after joining.
    script = f"import os, time; open('{manager.path('memory')}/cgroup.procs','w').write(str(os.getpid())); " \
             "x = bytearray(8 << 20); print(flush=True); time.sleep(60)"
    hog = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    hog.stdout.readline()
    try:
        with pytest.raises(OcirtError, match="checkBeforeUpdate"):
            manager.apply_resources({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}})
        manager.apply_resources({"memory": {"limit": 64 << 20, "checkBeforeUpdate": True}})
    finally:
        hog.kill()
        hog.wait()


@needs_v1
def test_cpu(manager, sleeper):
    manager.apply_resources({"cpu": {"shares": 512, "quota": 25000, "period": 50000, "burst": 1000,
                                     "realtimePeriod": 500000, "realtimeRuntime": 0, "cpus": "0", "mems": "0",
                                     "idle": 0}})
    assert _read(manager, "cpu", "cpu.shares") == "512"
    assert _read(manager, "cpu", "cpu.cfs_quota_us") == "25000"
    assert _read(manager, "cpu", "cpu.cfs_period_us") == "50000"
    assert _read(manager, "cpu", "cpu.cfs_burst_us") == "1000"
    assert _read(manager, "cpu", "cpu.rt_period_us") == "500000"
    assert _read(manager, "cpuset", "cpuset.cpus") == "0"
    assert _read(manager, "cpuset", "cpuset.mems") == "0"
    assert _read(manager, "cpu", "cpu.idle") == "0"
    manager.apply_resources({"cpu": {"idle": 1}})
    assert _read(manager, "cpu", "cpu.idle") == "1"
    manager.apply_resources({"cpu": {"quota": -1}})
    assert _read(manager, "cpu", "cpu.cfs_quota_us") == "-1"


@needs_v1
def test_cpu_realtime_budget_is_lent_down_the_ancestors(manager):
    """runtime-tools linux_cgroups_cpus asks for 950000/1000000 at a nested path."""
    root_runtime = int(read_file(os.path.join(_mount(manager.path("cpu")), "cpu.rt_runtime_us")))
    if root_runtime <= 0:
        pytest.skip("the root cpu cgroup has no realtime budget to lend")
    manager.apply_resources({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": root_runtime}})
    assert _read(manager, "cpu", "cpu.rt_runtime_us") == str(root_runtime)
    parent = os.path.dirname(manager.path("cpu"))
    assert read_file(os.path.join(parent, "cpu.rt_runtime_us")).strip() == str(root_runtime)
    # more than the root has is refused, naming the field
    with pytest.raises(OcirtError, match=r"cpu\.realtimeRuntime"):
        manager.apply_resources({"cpu": {"realtimeRuntime": root_runtime + 1}})
    # give the budget back so other cgroups under the shared parent are not starved
    with open(os.path.join(manager.path("cpu"), "cpu.rt_runtime_us"), "w") as f:
        f.write("0")
    with open(os.path.join(parent, "cpu.rt_runtime_us"), "w") as f:
        f.write("0")


def _mount(path):
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def test_pids(manager, sleeper):
    manager.apply_resources({"pids": {"limit": 42}})
    assert _read(manager, "pids", "pids.max") == "42"
    manager.apply_resources({"pids": {"limit": -1}})
    assert _read(manager, "pids", "pids.max") == "max"


@needs_v1
def test_block_io(manager, sleeper):
    files = os.listdir(manager.path("blkio"))
    weight_file = "blkio.weight" if "blkio.weight" in files else "blkio.bfq.weight"
    if weight_file not in files:
        pytest.skip("this kernel has no blkio weight files")
    loop = os.stat("/dev/loop0").st_rdev if os.path.exists("/dev/loop0") else os.makedev(7, 0)
    dev = {"major": os.major(loop), "minor": os.minor(loop)}
    manager.apply_resources({"blockIO": {
        "weight": 300,
        "throttleReadBpsDevice": [{**dev, "rate": 1048576}], "throttleWriteBpsDevice": [{**dev, "rate": 2097152}],
        "throttleReadIOPSDevice": [{**dev, "rate": 100}], "throttleWriteIOPSDevice": [{**dev, "rate": 200}]}})
    assert _read(manager, "blkio", weight_file).split()[-1] == "300"
    key = f"{dev['major']}:{dev['minor']}"
    assert _read(manager, "blkio", "blkio.throttle.read_bps_device") == f"{key} 1048576"
    assert _read(manager, "blkio", "blkio.throttle.write_bps_device") == f"{key} 2097152"
    assert _read(manager, "blkio", "blkio.throttle.read_iops_device") == f"{key} 100"
    assert _read(manager, "blkio", "blkio.throttle.write_iops_device") == f"{key} 200"


def test_hugetlb(manager, sleeper):
    sizes = [d.split("-")[1] for d in os.listdir("/sys/kernel/mm/hugepages")]
    if "2048kB" not in sizes:
        pytest.skip("no 2MB huge pages on this kernel")
    manager.apply_resources({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 << 20}]})
    kind, directory = (("v1", manager.path("hugetlb")) if manager.path("hugetlb") and MODE != "v2"
                       else ("v2", manager.unified))
    name = "hugetlb.2MB.limit_in_bytes" if kind == "v1" else "hugetlb.2MB.max"
    assert read_file(os.path.join(directory, name)).strip() == str(8 << 20)
    with pytest.raises(OcirtError, match=r"hugepageLimits\[0\]\.pageSize"):
        manager.apply_resources({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})


def test_network_and_rdma_name_the_field_when_unavailable(manager):
    net = {"classID": 1048577, "priorities": [{"name": "lo", "priority": 3}]}
    if manager.path("net_cls"):
        manager.apply_resources({"network": net})
        assert _read(manager, "net_cls", "net_cls.classid") == "1048577"
    else:
        with pytest.raises(OcirtError, match=r"network\.classID: the net_cls cgroup controller is not available"):
            manager.apply_resources({"network": net})
    if not manager.path("rdma") and "rdma" not in read_file("/proc/cgroups"):
        with pytest.raises(OcirtError, match=r"rdma\.mlx5_0: the rdma cgroup controller is not available"):
            manager.apply_resources({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}})


@needs_v1
def test_unified_keys_map_to_v1_files(manager, sleeper):
    manager.apply_resources({"unified": {"pids.max": "33", "memory.max": "50331648", "cpu.weight": "100",
                                         "cpu.max": "30000 60000"}})
    assert _read(manager, "pids", "pids.max") == "33"
    assert _read(manager, "memory", "memory.limit_in_bytes") == "50331648"
    assert _read(manager, "cpu", "cpu.shares") == str(2 + (99 * 262142) // 9999)
    assert _read(manager, "cpu", "cpu.cfs_quota_us") == "30000"
    assert _read(manager, "cpu", "cpu.cfs_period_us") == "60000"
    with pytest.raises(OcirtError, match=r"unified\.memory\.oom\.group"):
        manager.apply_resources({"unified": {"memory.oom.group": "1"}})
    with pytest.raises(ConfigError, match=r"unified\.\.\.\./x: not a cgroup file name"):
        manager.apply_resources({"unified": {".../x": "1"}})


@needs_v1
def test_device_rules_are_exactly_the_configured_ones(manager, sleeper):
    manager.apply_resources({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": True, "type": "b", "major": 8, "minor": 20, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "access": "r"}]})
    assert _read(manager, "devices", "devices.list").splitlines() == ["c 10:229 rwm", "b 8:20 rw", "c 1:* r"]
    # and the kernel enforces them: /dev/null (c 1:3) may be read but not written
    script = f"echo $$ > {manager.path('devices')}/cgroup.procs; cat /dev/null && echo read-ok; echo x > /dev/null"
    res = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert "read-ok" in res.stdout and "Operation not permitted" in res.stderr


def test_bad_values_name_the_field(manager):
    with pytest.raises(ConfigError, match=r"memory\.limit: must be an integer"):
        manager.apply_resources({"memory": {"limit": "1g"}})
    with pytest.raises(ConfigError, match=r"devices\[0\]\.access"):
        manager.apply_resources({"devices": [{"allow": True, "access": "rwx"}]})
    with pytest.raises(ConfigError, match=r"cpu\.cpus"):
        manager.apply_resources({"cpu": {"cpus": 3}})


# ---------------------------------------------------------------------- stats, OOM

def test_stats_in_runc_events_format(manager, sleeper):
    manager.apply_resources({"pids": {"limit": 99}, "memory": {"limit": 64 << 20}})
    stats = manager.stats()
    assert set(stats) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert set(stats["cpu"]["usage"]) >= {"total", "kernel", "user"}
    assert set(stats["cpu"]["throttling"]) == {"periods", "throttledPeriods", "throttledTime"}
    assert stats["pids"] == {"current": 1, "limit": 99}
    if MODE != "v2":
        assert stats["memory"]["usage"]["limit"] == 64 << 20
        assert set(stats["memory"]["usage"]) == {"limit", "usage", "max", "failcnt"}
    for section in ("cpu", "memory", "pids"):
        for value in _numbers(stats[section]):
            assert isinstance(value, int) and value >= 0  # Go decodes them as uint64


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif obj is not None:
        yield obj


@needs_v1
def test_oom_event(manager):
    manager.apply_resources({"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    watcher = manager.oom_watcher()
    try:
        script = f"import os; open('{manager.path('memory')}/cgroup.procs','w').write(str(os.getpid())); " \
                 "x = bytearray(256 << 20)"
        hog = subprocess.run([sys.executable, "-c", script], capture_output=True)
        assert hog.returncode == -signal.SIGKILL
        poller = select.poll()
        poller.register(watcher.fileno(), watcher.poll_mask)
        assert poller.poll(5000)
        assert watcher.read() >= 1
    finally:
        watcher.close()


def test_migration_warmup_keeps_its_child_where_it_is_and_reaps_it():
    """The warm-up child moves itself only into the cgroup it is already in,
    keeps doing so until finish(), and is gone (reaped) afterwards."""
    ours = read_file("/proc/self/cgroup")
    warmup = cgroups.MigrationWarmup()
    pid = warmup.pid
    try:
        time.sleep(0.05)  # several rounds of no-op moves
        assert read_file(f"/proc/{pid}/cgroup") == ours
        assert read_file(f"/proc/{pid}/stat").split(") ")[1][0] in "SR"  # still looping
    finally:
        warmup.finish()
    assert not os.path.exists(f"/proc/{pid}") or read_file(f"/proc/{pid}/stat").split(") ")[1][0] != "Z"
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    warmup.finish()  # idempotent

