"""podman resource control through ocirt: --memory/--cpus/--pids-limit,
pause/unpause, top, stats --no-stream, update.  Set OCIRT_PODMAN_RUNTIME to
another runtime (e.g. /usr/sbin/runc) to run the same tests against it."""
import json
import os
import shutil
import time

import pytest

from integration.podman_support import IMAGE, make_podman

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("podman"), reason="needs root and podman")


@pytest.fixture(scope="module")
def podman():
    p = make_podman()
    try:
        p.import_image()
        yield p
    finally:
        p.cleanup()


def _cgroup_dir(podman, name, controller):
    pid = podman("inspect", "--format", "{{.State.Pid}}", name, check=True).stdout.strip()
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return f"/sys/fs/cgroup/{controller}{path}"
    raise AssertionError(f"{controller} not in /proc/{pid}/cgroup")


def _read(path):
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def limited(podman):
    name = f"res-{os.urandom(4).hex()}"
    podman("run", "-d", "--name", name, "--memory", "64m", "--cpus", "0.5", "--pids-limit", "33", IMAGE,
           "sh", "-c", "sleep 1000 & wait", check=True)
    yield name
    podman("rm", "-f", "-t", "0", name, timeout=60)


def test_run_with_limits(podman, limited):
    assert _read(os.path.join(_cgroup_dir(podman, limited, "memory"), "memory.limit_in_bytes")) == str(64 << 20)
    cpu = _cgroup_dir(podman, limited, "cpu")
    quota, period = int(_read(cpu + "/cpu.cfs_quota_us")), int(_read(cpu + "/cpu.cfs_period_us"))
    assert quota / period == pytest.approx(0.5)
    assert _read(os.path.join(_cgroup_dir(podman, limited, "pids"), "pids.max")) == "33"


def test_pause_unpause(podman, limited):
    podman("pause", limited, check=True)
    assert podman("inspect", "--format", "{{.State.Status}}", limited, check=True).stdout.strip() == "paused"
    assert _read(os.path.join(_cgroup_dir(podman, limited, "freezer"), "freezer.state")) == "FROZEN"
    podman("unpause", limited, check=True)
    assert podman("inspect", "--format", "{{.State.Status}}", limited, check=True).stdout.strip() == "running"


def test_top(podman, limited):
    deadline = time.monotonic() + 5
    while True:
        out = podman("top", limited, check=True).stdout
        if "sleep 1000" in out or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "sleep 1000" in out and "COMMAND" in out.splitlines()[0]


def test_stats_no_stream(podman, limited):
    res = podman("stats", "--no-stream", "--format", "json", limited, check=True)
    stats = json.loads(res.stdout)
    assert stats[0]["name"] == limited
    assert "64MiB" in stats[0]["mem_usage"].replace(" ", "") or "67.11MB" in stats[0]["mem_usage"]
    assert int(stats[0]["pids"]) >= 2


def test_update(podman, limited):
    # podman 4.3's update has --memory/--cpus/... but no --pids-limit.
    devices_before = _read(_cgroup_dir(podman, limited, "devices") + "/devices.list")
    podman("update", "--memory", "96m", "--memory-swap", "192m", "--cpus", "0.25", limited, check=True)
    memory = _cgroup_dir(podman, limited, "memory")
    assert _read(memory + "/memory.limit_in_bytes") == str(96 << 20)
    assert _read(memory + "/memory.memsw.limit_in_bytes") == str(192 << 20)
    cpu = _cgroup_dir(podman, limited, "cpu")
    assert int(_read(cpu + "/cpu.cfs_quota_us")) / int(_read(cpu + "/cpu.cfs_period_us")) == pytest.approx(0.25)
    # podman resends its device rules: they must not be narrowed to the bare "deny all"
    assert _read(_cgroup_dir(podman, limited, "devices") + "/devices.list") == devices_before
