"""Pure cgroup v2 checks, run by tests/test_cgroups_v2.py inside a private
mount namespace where cgroup2 is mounted at /sys/fs/cgroup and nothing else.

On a hybrid host most controllers are bound to v1 hierarchies and cannot be
enabled on cgroup2: each such controller's test checks the clear error and
then skips, naming the controller.  The core v2 interface (cgroup.procs,
cgroup.freeze, cgroup.kill, cpu.stat) and the eBPF device filter need no
controller and are always tested.
"""
import os
import signal
import subprocess

import pytest

from ocirt import cgroups
from ocirt.cgroups.fs import read_file
from ocirt.errors import OcirtError

pytestmark = pytest.mark.skipif(os.environ.get("OCIRT_V2_INNER") != "1",
                                reason="run through tests/test_cgroups_v2.py (needs a private mount namespace)")
AVAILABLE = set(read_file("/sys/fs/cgroup/cgroup.controllers").split()) if os.path.exists(
    "/sys/fs/cgroup/cgroup.controllers") else set()


@pytest.fixture
def cgroup_parent():
    return "/ocirt-v2-test"


def _read(manager, name):
    return read_file(os.path.join(manager.unified, name)).strip()


def test_layout_is_pure_v2(manager):
    assert cgroups.detect_layout()[0] == "v2"
    assert list(manager.paths) == ["unified"]
    assert manager.unified.startswith("/sys/fs/cgroup/ocirt-v2-test/")


def test_lifecycle(manager, sleeper):
    assert manager.procs() == [sleeper.pid]
    manager.freeze()
    assert manager.is_frozen() and "frozen 1" in _read(manager, "cgroup.events")
    manager.thaw()
    assert not manager.is_frozen()
    manager.kill_all(signal.SIGKILL)   # through cgroup.kill
    assert sleeper.wait(5) == -signal.SIGKILL


def test_destroy_kills_and_removes(manager):
    proc = subprocess.Popen(["sleep", "60"])
    manager.add_pid(proc.pid)
    os.mkdir(os.path.join(manager.unified, "sub"))
    manager.destroy()
    assert proc.wait(5) == -signal.SIGKILL
    assert not os.path.exists(manager.unified)


CONTROLLER_CASES = {
    "memory": ({"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20}},
               {"memory.max": str(64 << 20), "memory.swap.max": str(32 << 20), "memory.low": str(16 << 20)}),
    "pids": ({"pids": {"limit": 17}}, {"pids.max": "17"}),
    "cpu": ({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 1}},
            {"cpu.weight": "39", "cpu.max": "50000 100000", "cpu.max.burst": "1000", "cpu.idle": "1"}),
    "cpuset": ({"cpu": {"cpus": "0", "mems": "0"}}, {"cpuset.cpus": "0", "cpuset.mems": "0"}),
    "io": ({"blockIO": {"weight": 500}}, {}),
    "hugetlb": ({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}, {"hugetlb.2MB.max": str(4 << 20)}),
}


@pytest.mark.parametrize("controller", sorted(CONTROLLER_CASES))
def test_controller(manager, sleeper, controller):
    resources, expected = CONTROLLER_CASES[controller]
    if controller not in AVAILABLE:
        with pytest.raises(OcirtError, match=f"the {controller} cgroup controller is not available on the unified"):
            manager.apply_resources(resources)
        pytest.skip(f"{controller} controller is bound to a cgroup v1 hierarchy on this host and cannot be "
                    "enabled on cgroup2 (only the clear error was checked)")
    manager.apply_resources(resources)
    for name, value in expected.items():
        assert _read(manager, name) == value


def test_unified_keys(manager, sleeper):
    if "hugetlb" in AVAILABLE:
        manager.apply_resources({"unified": {"hugetlb.2MB.max": str(2 << 20)}})
        assert _read(manager, "hugetlb.2MB.max") == str(2 << 20)
    manager.apply_resources({"unified": {"cgroup.max.descendants": "5"}})
    assert _read(manager, "cgroup.max.descendants") == "5"
    if "pids" not in AVAILABLE:
        with pytest.raises(OcirtError, match=r"unified\.pids\.max: the pids controller is not available"):
            manager.apply_resources({"unified": {"pids.max": "5"}})


def _in_cgroup(manager, script):
    return subprocess.run(["sh", "-c", f"echo $$ > {manager.unified}/cgroup.procs; {script}"],
                          capture_output=True, text=True)


def test_ebpf_device_filter(manager):
    from ocirt.cgroups.devices import attached_program_ids
    manager.apply_resources({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},   # /dev/null
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})  # /dev/zero, read only
    first = attached_program_ids(manager.unified)
    assert len(first) == 1
    res = _in_cgroup(manager, "echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-r-ok; "
                              "echo x > /dev/zero || echo zero-w-denied; head -c1 /dev/urandom || echo urandom-denied")
    assert res.stdout.split() == ["null-ok", "zero-r-ok", "zero-w-denied", "urandom-denied"], res.stderr
    # An update swaps the program: still exactly one attached, the new one.
    manager.apply_resources({"devices": [{"allow": False, "access": "rwm"},
                                         {"allow": True, "type": "a", "access": "rwm"},
                                         {"allow": False, "type": "c", "major": 1, "minor": 9, "access": "r"}]})
    second = attached_program_ids(manager.unified)
    assert len(second) == 1 and second != first
    res = _in_cgroup(manager, "head -c1 /dev/zero >/dev/null && echo zero-ok; head -c1 /dev/urandom || echo urandom-denied")
    assert res.stdout.split() == ["zero-ok", "urandom-denied"], res.stderr


def test_stats_and_oom_watcher(manager, sleeper):
    stats = manager.stats()
    assert stats["cpu"]["usage"]["total"] >= 0 and "throttling" in stats["cpu"]
    if "memory" not in AVAILABLE:
        with pytest.raises(OcirtError, match="OOM events need the memory controller"):
            manager.oom_watcher()
