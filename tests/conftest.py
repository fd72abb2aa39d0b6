import os
import subprocess
import tempfile
import uuid

import pytest

from tests.support import make_bundle, ocirt_bin, run_ocirt

ocirt_bin()  # build the cffi binding in place before any test imports ocirt.linux


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return str(d)


@pytest.fixture
def bundle(tmp_path):
    def _make(args=("sh", "-c", "true"), **kw):
        path = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}"
        return make_bundle(str(path), args=args, **kw)
    return _make


@pytest.fixture
def ocirt(root):
    def _run(*args, **kw):
        return run_ocirt(*args, root=root, **kw)
    return _run


def cid():
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture
def cgroup_parent():
    """Where the cgroup tests make their cgroups (overridden by the pure-v2 checks)."""
    return "/ocirt-test"


@pytest.fixture
def manager(cgroup_parent):
    """A fresh cgroup of the host's layout, destroyed afterwards."""
    from ocirt import cgroups
    m = cgroups.manager_for({"cgroupsPath": f"{cgroup_parent}/{uuid.uuid4().hex[:12]}"}, "t")
    m.create()
    yield m
    m.destroy()


@pytest.fixture
def sleeper(manager):
    """A `sleep 60` inside ``manager``'s cgroup, killed afterwards."""
    proc = subprocess.Popen(["sleep", "60"])
    manager.add_pid(proc.pid)
    yield proc
    proc.kill()
    proc.wait()
