"""Namespaces and user namespace id mappings: runtime-spec config-linux.md
"Namespaces", "User namespace mappings"."""
import os
import subprocess

import pytest

from integration.conformance.harness import mounts_under, process_gone, sh

ALL_TYPES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup",
             "user": "user", "time": "time"}
USER_MAPS = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
PRINT_NS = sh("for n in pid net ipc uts mnt cgroup user time; do echo $n=$(readlink /proc/self/ns/$n); done")


def host_ns(proc_name):
    return os.readlink(f"/proc/self/ns/{proc_name}")


def parse_ns(text):
    return dict(line.split("=", 1) for line in text.splitlines())


def with_namespaces(types, extra=None):
    def mutate(config):
        config["linux"]["namespaces"] = [{"type": t} for t in types]
        if "uts" not in types:
            config.pop("hostname", None)   # runtimes refuse to set the host's name
        if "user" in types:
            config["linux"].update(USER_MAPS)
            # sysfs and cgroupfs of the host's user namespace cannot be
            # mounted fresh from a new one without a new net/cgroup ns
            config["mounts"] = [m for m in config["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        if extra:
            extra(config)
    return mutate


@pytest.mark.parametrize("ns_type", sorted(ALL_TYPES))
def test_new_namespace(rt, ns_type):
    """config-linux.md "Namespaces": a listed namespace type without `path`
    gets a new namespace."""
    types = ["mount", ns_type] if ns_type != "mount" else ["mount"]
    if ns_type == "user":
        # proc and mqueue can be mounted from a user namespace only with its
        # own pid and ipc namespaces
        types += ["pid", "ipc"]
    ctr = rt.container(PRINT_NS, mutate=with_namespaces(types))
    seen = parse_ns(ctr.run())
    proc_name = ALL_TYPES[ns_type]
    assert seen[proc_name] != host_ns(proc_name)


@pytest.mark.parametrize("ns_type", sorted(set(ALL_TYPES) - {"mount"}))
def test_host_namespace_when_omitted(rt, ns_type):
    """config-linux.md "Namespaces": a type that is not listed is inherited
    from the runtime's namespace.  (mount: test_mount_namespace_omitted.)"""
    types = [t for t in ALL_TYPES if t not in (ns_type, "user", "time")]
    ctr = rt.container(PRINT_NS, mutate=with_namespaces(types))
    seen = parse_ns(ctr.run())
    proc_name = ALL_TYPES[ns_type]
    assert seen[proc_name] == host_ns(proc_name)


def test_join_namespaces_by_path(rt):
    """config-linux.md "Namespaces": `path` joins an existing namespace (here
    those of a first container: net, ipc, uts, pid)."""
    first = rt.container(["sleep", "600"])
    first.create()
    joined = {t: f"/proc/{first.pid}/ns/{ALL_TYPES[t]}" for t in ("network", "ipc", "uts", "pid")}

    def mutate(config):
        config["linux"]["namespaces"] = [{"type": t, "path": p} for t, p in joined.items()] + [{"type": "mount"}]
        config.pop("hostname", None)
    second = rt.container(PRINT_NS, mutate=mutate)
    seen = parse_ns(second.run())
    for t in joined:
        assert seen[ALL_TYPES[t]] == os.readlink(joined[t]), t
    assert not process_gone(first.pid)


def test_join_namespace_of_wrong_type_fails(rt):
    """config-linux.md "Namespaces": a `path` whose namespace does not match
    `type` is an error."""
    def mutate(config):
        config["linux"]["namespaces"] = [{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/ipc"}]
    ctr = rt.container(["true"], mutate=mutate)
    assert ctr.create(check=False).returncode != 0


def test_duplicate_namespace_type_fails(rt):
    """config-linux.md "Namespaces": duplicated types are an error."""
    def mutate(config):
        config["linux"]["namespaces"].append({"type": "pid"})
    ctr = rt.container(["true"], mutate=mutate)
    assert ctr.create(check=False).returncode != 0


def test_pid_namespace_process_is_pid_1(rt):
    """config-linux.md "Namespaces" pid: in a new pid namespace the container
    process is pid 1."""
    ctr = rt.container(sh("echo $$"))
    assert ctr.run() == "1\n"


def test_network_namespace_has_only_lo(rt):
    """config-linux.md "Namespaces" network: a new network namespace starts
    with only the loopback interface."""
    ctr = rt.container(["cat", "/proc/net/dev"])
    interfaces = [line.split(":")[0].strip() for line in ctr.run().splitlines()[2:]]
    assert interfaces == ["lo"]


def test_user_namespace_mappings(rt):
    """config-linux.md "User namespace mappings": `uidMappings` and
    `gidMappings` are written to the new user namespace; the process is root
    inside and the mapped uid outside."""
    ctr = rt.container(sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
                          "touch /tmp/owned; stat -c '%u %g' /tmp/owned"),
                       mutate=with_namespaces(["mount", "user", "pid", "ipc", "uts", "network"]))
    os.chmod(os.path.join(ctr.rootfs, "tmp"), 0o1777)
    lines = ctr.run().splitlines()
    assert [line.split() for line in lines[:2]] == [["0", "100000", "65536"]] * 2
    assert lines[2:5] == ["0", "0", "0 0"]
    st = os.stat(os.path.join(ctr.rootfs, "tmp", "owned"))
    assert (st.st_uid, st.st_gid) == (100000, 100000)


def test_user_namespace_needs_mappings(rt):
    """config-linux.md "User namespace mappings": with a new user namespace
    and no mappings there is nothing to map root to; runtimes refuse (runc:
    "user namespaces enabled, but no mapping found")."""
    def mutate(config):
        config["linux"]["namespaces"].append({"type": "user"})
    ctr = rt.container(["true"], mutate=mutate)
    assert ctr.create(check=False).returncode != 0


def test_time_namespace_offsets(rt):
    """config-linux.md `timeOffsets` with a new time namespace: the
    monotonic and boottime clocks are shifted (uptime reads a year more)."""
    year = 365 * 24 * 3600

    def extra(config):
        config["linux"]["timeOffsets"] = {"monotonic": {"secs": year, "nanosecs": 0},
                                          "boottime": {"secs": year, "nanosecs": 0}}
    ctr = rt.container(["cat", "/proc/uptime"], mutate=with_namespaces(["mount", "time", "pid", "ipc", "uts",
                                                                         "network"], extra))
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    container_uptime = float(ctr.run().split()[0])
    assert container_uptime - host_uptime > year - 60


def test_net_devices_move_with_permanent_addresses(rt):
    """config-linux.md "Network Devices" (runtime-spec 1.2): the host
    interface moves into the container's network namespace under its new
    name, keeps its permanent global-scope addresses (a move drops them) and
    is up; an address with a lifetime is not permanent and stays behind.
    runc 1.1.5 predates netDevices and ignores it."""
    host_name = f"ocd{os.getpid() % 100000}"
    peer = host_name + "p"  # a veth pair: this kernel has no dummy driver

    def ip(*args, check=True):
        return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)
    ip("link", "add", host_name, "type", "veth", "peer", "name", peer)
    try:
        ip("addr", "add", "10.199.7.2/24", "dev", host_name)
        ip("-6", "addr", "add", "fd00:199:7::2/64", "dev", host_name, "nodad")
        ip("addr", "add", "10.199.8.2/24", "dev", host_name, "valid_lft", "300", "preferred_lft", "300")

        def mutate(config):
            config["linux"]["netDevices"] = {host_name: {"name": "ctr0"}}
        ctr = rt.container(sh("ip addr show ctr0"), mutate=mutate)
        ctr.create()
        assert ip("link", "show", host_name, check=False).returncode != 0  # moved out of the host namespace
        ctr.start()
        ctr.wait()
        out = ctr.stdout()
        ctr.delete()
        first = out.splitlines()[0] if out else ""
        assert "ctr0" in first and ",UP" in first, out
        assert "inet 10.199.7.2/24" in out and "inet6 fd00:199:7::2/64" in out, out
        assert "10.199.8.2" not in out, out
    finally:
        ip("link", "del", peer, check=False)  # takes the moved end with it, wherever it is


def test_mount_namespace_omitted(rt):
    """config-linux.md "Namespaces": without a `mount` entry the container
    shares the runtime's mount namespace, yet its root is still `root.path`
    (config.md "Root") and its `mounts` are made (necessarily in that shared
    namespace, below the rootfs), for the init and for `exec`.  Nothing may be
    left mounted once the container is deleted.  (runtime-tools
    `linux_ns_itype` creates such a container: every namespace inherited.)"""
    types = [t for t in ALL_TYPES if t not in ("mount", "user", "time")]
    ctr = rt.container(["sleep", "600"], mutate=with_namespaces(types))
    with open(os.path.join(ctr.rootfs, "marker"), "w") as f:
        f.write("inside-rootfs\n")
    try:
        ctr.create()
        ctr.start()
        res = rt.call("exec", ctr.id, "sh", "-c",
                      "cat /marker; readlink /proc/self/ns/mnt; grep -c ' /proc ' /proc/self/mountinfo", check=True)
        marker, mntns, proc_mounts = res.stdout.split()
        assert marker == "inside-rootfs"
        assert mntns == host_ns("mnt")
        assert int(proc_mounts) >= 1, "the config's /proc mount is missing"
        assert os.readlink(f"/proc/{ctr.pid}/root") == os.path.realpath(ctr.rootfs)
        ctr.delete("--force")
    finally:
        leaked = mounts_under(ctr.bundle)
        for target in reversed(leaked):  # keep the host clean for the next tests
            subprocess.run(["umount", "-l", target], check=False)
    assert not leaked, f"mounts left behind after delete: {leaked}"
