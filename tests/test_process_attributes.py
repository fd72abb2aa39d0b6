"""Process attributes applied by init/exec, read back from inside the container."""
import os
import socket

import pytest

from tests.conftest import cid


def _keys():
    with open("/proc/keys") as f:
        return f.read()


def test_session_keyring_per_container(ocirt, bundle):
    """runc's behaviour: a keyring named _ses.<id>, unless --no-new-keyring."""
    c = cid()
    assert ocirt("run", "-d", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    try:
        assert f"_ses.{c}:" in _keys()
    finally:
        ocirt("delete", "-f", c)
    c = cid()
    assert ocirt("run", "-d", "--no-new-keyring", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    try:
        assert f"_ses.{c}:" not in _keys()
    finally:
        ocirt("delete", "-f", c)


def test_scheduler_policy(ocirt, bundle):
    def mutate(cfg):
        cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
        cfg["process"]["args"] = ["sh", "-c", "cut -d' ' -f19,41 /proc/self/stat"]
    res = ocirt("run", "--bundle", bundle(mutate=mutate), cid())
    assert res.returncode == 0, res.stderr
    nice, policy = res.stdout.split()
    assert nice == "5" and int(policy) == 3  # SCHED_BATCH


def test_bad_scheduler_policy(ocirt, bundle):
    def mutate(cfg):
        cfg["process"]["scheduler"] = {"policy": "SCHED_ISO"}
    res = ocirt("run", "--bundle", bundle(mutate=mutate), cid())
    assert res.returncode == 1 and "process.scheduler" in res.stderr


def test_intel_rdt_is_refused_not_ignored(ocirt, bundle, root):
    def mutate(cfg):
        cfg["linux"]["intelRdt"] = {"closID": "x"}
    res = ocirt("create", "--bundle", bundle(mutate=mutate), cid())
    assert res.returncode == 1 and "intelRdt" in res.stderr
    assert os.listdir(root) == []


@pytest.mark.skipif(os.path.exists("/sys/module/apparmor/parameters/enabled"),
                    reason="the host has AppArmor: the profile would be applied, not refused")
def test_apparmor_profile_without_apparmor_is_refused_not_ignored(ocirt, bundle, root):
    """A profile this host cannot apply fails create and exec with the field
    named, rather than running the process unconfined."""
    def mutate(cfg):
        cfg["process"]["apparmorProfile"] = "ocirt-test-profile"
    res = ocirt("create", "--bundle", bundle(mutate=mutate), cid())
    assert res.returncode == 1 and "process.apparmorProfile" in res.stderr and "AppArmor is not enabled" in res.stderr
    assert os.listdir(root) == []
    c = cid()
    assert ocirt("run", "-d", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    try:
        res = ocirt("exec", "--apparmor", "ocirt-test-profile", c, "true")
        assert res.returncode == 255 and "process.apparmorProfile" in res.stderr
    finally:
        ocirt("delete", "-f", c)


def test_pidfd_socket(ocirt, bundle, tmp_path):
    path = str(tmp_path / "pidfd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    c = cid()
    assert ocirt("create", "--pidfd-socket", path, "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    conn, _ = server.accept()
    _msg, fds, _f, _a = socket.recv_fds(conn, 1024, 1)
    assert len(fds) == 1
    fdinfo = open(f"/proc/self/fdinfo/{fds[0]}").read()
    import json
    pid = json.loads(ocirt("state", c).stdout)["pid"]
    assert f"Pid:\t{pid}" in fdinfo  # a pidfd of the container's init
    ocirt("delete", "-f", c)
