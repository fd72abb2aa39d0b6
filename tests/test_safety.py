"""The container must not reach host files, fds or binaries, and a failed
create or delete --force must leave nothing behind."""
import json
import os

from tests.conftest import cid


def _mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def _cgroup_dirs(name):
    found = []
    for top, dirs, _files in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(top, d) for d in dirs if name in d]
        if top.count("/") > 8:
            dirs[:] = []
    return found


def test_symlinked_mount_target_stays_in_rootfs(ocirt, bundle, tmp_path):
    """CVE-2021-30465 class: a mount destination that is a symlink to a host
    path resolves inside the rootfs."""
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "marker").write_text("from-volume")

    def mutate(cfg):
        cfg["mounts"].append({"destination": "/evil/x", "type": "bind", "source": str(src), "options": ["bind"]})
        cfg["process"]["args"] = ["sh", "-c", f"cat {host_dir}/x/marker"]
    b = bundle(mutate=mutate)
    os.symlink(str(host_dir), os.path.join(b, "rootfs", "evil"))
    res = ocirt("run", "--bundle", b, cid())
    assert res.returncode == 0, res.stderr
    assert res.stdout == "from-volume"  # the mount landed at rootfs/<host_dir>/x ...
    assert not os.path.exists(host_dir / "x")  # ... never in the host directory
    assert os.path.isdir(os.path.join(b, "rootfs", str(host_dir).lstrip("/"), "x"))


def test_cwd_through_leaked_fd_is_refused(ocirt, bundle):
    """CVE-2024-21626 class: process.cwd via /proc/self/fd/N must not reach the host."""
    for n in range(3, 10):
        def mutate(cfg, n=n):
            cfg["process"]["cwd"] = f"/proc/self/fd/{n}"
            cfg["process"]["args"] = ["sh", "-c", "ls ..; pwd"]
        res = ocirt("run", "--bundle", bundle(mutate=mutate), cid())
        assert res.returncode != 0 or "work" not in res.stdout
        assert "Traceback" not in res.stderr


def test_no_host_fd_reaches_the_container(ocirt, bundle):
    res = ocirt("run", "--bundle", bundle(args=["ls", "/proc/self/fd"]), cid())
    assert sorted(res.stdout.split()) == ["0", "1", "2", "3"]  # 3 = ls's own directory fd


def test_runtime_is_not_dumpable_while_joining(ocirt, bundle):
    """During exec the runtime's /proc/<pid>/exe (the host interpreter) is the
    CVE-2019-5736 target: the joining process is non-dumpable, so its /proc
    entries belong to root and are closed to ptrace-less processes."""
    c = cid()
    assert ocirt("run", "-d", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    try:
        # a process inside the container sees the exec'd sh itself only after
        # execve; before it, the joining runtime is non-dumpable.
        res = ocirt("exec", c, "sh", "-c", "grep -h '^Name' /proc/[0-9]*/status | sort -u")
        assert "python" not in res.stdout
    finally:
        ocirt("delete", "-f", c)


def test_failed_create_leaves_nothing(ocirt, bundle, root):
    before = _mounts()
    c = cid()

    def mutate(cfg):
        cfg["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    res = ocirt("create", "--bundle", bundle(args=["sleep", "30"], mutate=mutate), c)
    assert res.returncode == 1 and "createRuntime" in res.stderr
    assert os.listdir(root) == []
    assert _mounts() == before
    assert _cgroup_dirs(c) == []


def test_bad_config_names_the_field(ocirt, bundle):
    def mutate(cfg):
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]
    res = ocirt("create", "--bundle", bundle(mutate=mutate), cid())
    assert res.returncode == 1 and "rlimits" in res.stderr and len(res.stderr.splitlines()) == 1


def test_nofile_above_the_host_limit_fails_clearly(ocirt, bundle):
    def mutate(cfg):
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}]
    res = ocirt("create", "--bundle", bundle(mutate=mutate), cid())
    assert res.returncode == 1 and "RLIMIT_NOFILE" in res.stderr


def test_delete_force_leaves_no_cgroup(ocirt, bundle):
    c = cid()
    assert ocirt("run", "-d", "--bundle", bundle(args=["sleep", "30"]), c).returncode == 0
    assert _cgroup_dirs(c)
    assert ocirt("delete", "-f", c).returncode == 0
    assert _cgroup_dirs(c) == []
