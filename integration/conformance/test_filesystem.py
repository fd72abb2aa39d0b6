"""Root filesystem, mounts and devices: runtime-spec config.md "Root",
"Mounts", config-linux.md "Devices", "Masked Paths", "Readonly Paths",
"Rootfs Mount Propagation", runtime-linux.md "Dev symbolic links"."""
import os
import subprocess

import pytest

from integration.conformance.harness import mountinfo_entry, sh


def host_dir(rt, name, files=None, mode=0o755):
    path = os.path.join(rt.workdir, name)
    os.makedirs(path)
    os.chmod(path, mode)
    for rel, text in (files or {}).items():
        with open(os.path.join(path, rel), "w") as f:
            f.write(text)
    return path


def add_mount(config, destination, source, options, mtype="bind"):
    config["mounts"].append({"destination": destination, "type": mtype, "source": source, "options": options})


def test_bind_mount(rt):
    """config.md "Mounts": a bind mount shows the host directory's content at
    `destination`, and writes go through to the host."""
    src = host_dir(rt, "bindsrc", {"hello": "from-host\n"}, mode=0o777)
    ctr = rt.container(sh("cat /data/hello; echo from-ctr > /data/back"),
                       mutate=lambda c: add_mount(c, "/data", src, ["bind"]))
    assert ctr.run() == "from-host\n"
    with open(os.path.join(src, "back")) as f:
        assert f.read() == "from-ctr\n"


def test_bind_mount_creates_missing_destination(rt):
    """config.md "Mounts": the runtime creates a missing mount destination
    (runc's behaviour, relied on by every client), here two levels deep."""
    src = host_dir(rt, "bindsrc", {"f": "x\n"})
    ctr = rt.container(["cat", "/new/deep/f"], mutate=lambda c: add_mount(c, "/new/deep", src, ["bind"]))
    assert ctr.run() == "x\n"


@pytest.fixture
def nested_source(rt):
    """A host dir with a tmpfs mounted below it, for bind vs rbind."""
    src = host_dir(rt, "nested")
    sub = os.path.join(src, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "conformance-sub", sub], check=True)
    with open(os.path.join(sub, "marker"), "w") as f:
        f.write("submount\n")
    yield src
    subprocess.run(["umount", "-l", sub], check=True)


@pytest.mark.parametrize("kind,expected", [("bind", "absent"), ("rbind", "submount")])
def test_bind_vs_rbind(rt, nested_source, kind, expected):
    """config.md "Mounts" options: `bind` copies only the mount itself;
    `rbind` includes the mounts below it."""
    ctr = rt.container(sh("cat /data/sub/marker 2>/dev/null || echo absent"),
                       mutate=lambda c: add_mount(c, "/data", nested_source, [kind]))
    assert ctr.run() == expected + "\n"


def test_readonly_bind_mount(rt):
    """config.md "Mounts" option `ro`: the mount is read-only in the container
    (EROFS) while the host dir stays writable."""
    src = host_dir(rt, "rosrc", {"f": "x\n"}, mode=0o777)
    ctr = rt.container(sh("cat /data/f; touch /data/new 2>&1 | grep -q 'Read-only' && echo erofs"),
                       mutate=lambda c: add_mount(c, "/data", src, ["bind", "ro"]))
    assert ctr.run() == "x\nerofs\n"
    assert not os.path.exists(os.path.join(src, "new"))


def test_tmpfs_with_options(rt):
    """config.md "Mounts": a tmpfs mount with its data options (size, mode)
    and flags (nosuid, nodev, noexec) applied."""
    ctr = rt.container(sh("stat -c %a /scratch; cat /proc/self/mountinfo"),
                       mutate=lambda c: add_mount(c, "/scratch", "tmpfs",
                                                  ["nosuid", "nodev", "noexec", "size=2m", "mode=1770"], "tmpfs"))
    out = ctr.run()
    mode, _, mountinfo = out.partition("\n")
    assert mode == "1770"
    entry = mountinfo_entry(mountinfo, "/scratch")
    assert entry and entry["fstype"] == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= set(entry["options"])
    assert "size=2048k" in entry["super"]


def test_proc_mount(rt):
    """config.md "Mounts": a `proc` mount at a second destination shows the
    container's pid namespace (its process is pid 1)."""
    ctr = rt.container(sh("tr '\\0' ' ' < /proc2/1/cmdline; echo; grep -c . /proc2/1/status >/dev/null && echo ok"),
                       mutate=lambda c: add_mount(c, "/proc2", "proc", ["nosuid", "nodev", "noexec"], "proc"))
    assert ctr.run().splitlines()[0].startswith("sh -c tr")


def test_default_filesystems(rt):
    """config-linux.md "Default Filesystems": /proc, /sys, /dev/pts and
    /dev/shm SHOULD be available with their types."""
    ctr = rt.container(["cat", "/proc/self/mountinfo"])
    mountinfo = ctr.run()
    types = {mp: (mountinfo_entry(mountinfo, mp) or {}).get("fstype")
             for mp in ("/proc", "/sys", "/dev/pts", "/dev/shm")}
    assert types == {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}


@pytest.mark.parametrize("option,marker", [("rshared", "shared:"), ("rslave", "master:"),
                                           ("rprivate", None), ("runbindable", "unbindable")])
def test_mount_propagation_option(rt, option, marker):
    """config.md "Mounts" propagation options (`rshared`, `rslave`,
    `rprivate`, `runbindable`): the container's mountinfo shows the matching
    optional field.  The bind source is made a shared mount on the host so
    that `rslave` has a master to follow."""
    src = host_dir(rt, "propsrc")
    subprocess.run(["mount", "--bind", "--make-shared", src, src], check=True)
    try:
        ctr = rt.container(["cat", "/proc/self/mountinfo"],
                           mutate=lambda c: add_mount(c, "/data", src, ["rbind", option]))
        entry = mountinfo_entry(ctr.run(), "/data")
    finally:
        subprocess.run(["umount", "-l", src], check=True)
    assert entry, "mount missing"
    tags = " ".join(entry["optional"])
    if marker:
        assert marker in tags, entry
    else:
        assert not any(t.startswith(("shared:", "master:", "unbindable")) for t in entry["optional"]), entry


@pytest.mark.parametrize("propagation,marker", [("shared", "shared:"), ("slave", "master:"),
                                                ("private", None), ("unbindable", "unbindable")])
def test_rootfs_propagation(rt, propagation, marker):
    """config-linux.md "Rootfs Mount Propagation": `rootfsPropagation` sets
    the propagation of the container's root mount.  The host's root is
    private here, so the bundle's rootfs is first made a shared mount on the
    host: a slave needs a master to follow."""
    def mutate(config):
        config["linux"]["rootfsPropagation"] = propagation
    ctr = rt.container(["cat", "/proc/self/mountinfo"], mutate=mutate)
    subprocess.run(["mount", "--bind", "--make-shared", ctr.rootfs, ctr.rootfs], check=True)
    try:
        entry = mountinfo_entry(ctr.run(), "/")
    finally:
        subprocess.run(["umount", "-l", ctr.rootfs], check=True)
    assert entry
    if marker:
        assert any(t.startswith(marker) for t in entry["optional"]), entry
    else:
        assert not any(t.startswith(("shared:", "master:", "unbindable")) for t in entry["optional"]), entry


def test_readonly_root(rt):
    """config.md "Root": `readonly: true` makes the root filesystem read-only
    inside the container."""
    ctr = rt.container(sh("touch /newfile 2>&1 | grep -q 'Read-only' && echo erofs; cat /proc/self/mountinfo"),
                       readonly=True)
    out = ctr.run()
    assert out.startswith("erofs\n")
    assert "ro" in mountinfo_entry(out, "/")["options"]
    assert not os.path.exists(os.path.join(ctr.rootfs, "newfile"))


def test_writable_root(rt):
    """config.md "Root": with `readonly: false` the root is writable."""
    ctr = rt.container(sh("echo x > /newfile && echo ok"))
    assert ctr.run() == "ok\n"


def test_masked_paths(rt):
    """config-linux.md "Masked Paths": masked files read as empty and masked
    directories appear empty; the content is not reachable."""
    def mutate(config):
        os.makedirs(os.path.join(ctr_rootfs[0], "etc", "secretdir"), exist_ok=True)
        with open(os.path.join(ctr_rootfs[0], "etc", "secretdir", "key"), "w") as f:
            f.write("secret\n")
        with open(os.path.join(ctr_rootfs[0], "etc", "secretfile"), "w") as f:
            f.write("secret\n")
        config["linux"]["maskedPaths"] = ["/etc/secretfile", "/etc/secretdir", "/proc/timer_list", "/does/not/exist"]
    ctr_rootfs = []
    ctr = rt.container(sh("echo file:$(cat /etc/secretfile); echo dir:$(ls /etc/secretdir); "
                          "echo timer_list:$(wc -c < /proc/timer_list)"))
    ctr_rootfs.append(ctr.rootfs)
    ctr.edit_config(mutate)
    assert ctr.run() == "file:\ndir:\ntimer_list:0\n"


def test_readonly_paths(rt):
    """config-linux.md "Readonly Paths": listed paths are read-only inside the
    container; other paths stay writable."""
    ctr = rt.container(sh("touch /etc/rodir/x 2>/dev/null && echo rw-ro || echo ro-ro; "
                          "touch /etc/rwdir/x && echo rw-rw"))
    for d in ("rodir", "rwdir"):
        os.makedirs(os.path.join(ctr.rootfs, "etc", d))
    ctr.edit_config(lambda c: c["linux"].update(readonlyPaths=["/etc/rodir", "/proc/sys"]))
    assert ctr.run() == "ro-ro\nrw-rw\n"


DEFAULT_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7), "/dev/random": (1, 8),
                   "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}


def test_default_devices(rt):
    """config-linux.md "Default Devices": /dev/null, zero, full, random,
    urandom, tty are character devices with the host's major:minor, and
    /dev/ptmx is a bind mount or symlink of /dev/pts/ptmx."""
    paths = " ".join(DEFAULT_DEVICES)
    ctr = rt.container(sh(f"stat -c '%n %F %t %T' {paths}; readlink /dev/ptmx || stat -c '%t %T' /dev/ptmx"))
    lines = ctr.run().splitlines()
    seen = {}
    for line in lines[:len(DEFAULT_DEVICES)]:
        name, rest = line.split(" ", 1)
        kind, major, minor = rest.rsplit(" ", 2)
        seen[name] = (kind, int(major, 16), int(minor, 16))
    assert seen == {p: ("character special file", *mm) for p, mm in DEFAULT_DEVICES.items()}
    assert lines[len(DEFAULT_DEVICES)] in ("pts/ptmx", "/dev/pts/ptmx", "5 2"), lines


def test_dev_symlinks(rt):
    """runtime-linux.md "Dev symbolic links": /dev/fd → /proc/self/fd,
    /dev/stdin|stdout|stderr → /proc/self/fd/0|1|2."""
    ctr = rt.container(sh("for l in fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done"))
    assert ctr.run() == ("fd=/proc/self/fd\nstdin=/proc/self/fd/0\n"
                         "stdout=/proc/self/fd/1\nstderr=/proc/self/fd/2\n")


def test_linux_devices(rt):
    """config-linux.md "Devices": each entry is created with its type,
    major/minor, `fileMode`, `uid` and `gid` (and, with a device cgroup rule
    allowing it, is usable)."""
    def mutate(config):
        config["linux"]["devices"] = [
            {"path": "/dev/conf-char", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000,
             "gid": 5},
            {"path": "/dev/sub/conf-fifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0}]
        config["process"]["user"] = {"uid": 1000, "gid": 1000}
        config["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3,
                                                        "access": "rwm"})
    ctr = rt.container(sh("stat -c '%n %F %t %T %a %u %g' /dev/conf-char /dev/sub/conf-fifo; "
                          "echo hi > /dev/conf-char && echo writable-by-owner"), mutate=mutate)
    assert ctr.run().splitlines() == ["/dev/conf-char character special file 1 3 640 1000 5",
                                      "/dev/sub/conf-fifo fifo 0 0 600 0 0", "writable-by-owner"]


def test_mounts_applied_in_order(rt):
    """config.md "Mounts": the runtime MUST mount entries in the listed order:
    a bind below a tmpfs is visible only because the tmpfs came first."""
    src = host_dir(rt, "ordersrc", {"f": "bound\n"})

    def mutate(config):
        add_mount(config, "/stack", "tmpfs", ["size=1m"], "tmpfs")
        add_mount(config, "/stack/inner", src, ["bind"])
    ctr = rt.container(sh("cat /stack/inner/f"), mutate=mutate)
    assert ctr.run() == "bound\n"


def test_mqueue_and_cgroup_mounts(rt):
    """config.md "Mounts" with the types runc's default spec uses: `mqueue` at
    /dev/mqueue and `cgroup` at /sys/fs/cgroup (on this hybrid host: a
    read-only view holding the v1 controller hierarchies)."""
    ctr = rt.container(sh("cat /proc/self/mountinfo; echo ---; ls /sys/fs/cgroup"))
    mountinfo, _, listing = ctr.run().partition("---\n")
    assert (mountinfo_entry(mountinfo, "/dev/mqueue") or {}).get("fstype") == "mqueue"
    cgroup_types = {e["fstype"] for mp in ["/sys/fs/cgroup"] + [f"/sys/fs/cgroup/{c}" for c in listing.split()]
                    if (e := mountinfo_entry(mountinfo, mp))}
    assert cgroup_types & {"cgroup", "cgroup2"}, mountinfo
    assert "memory" in listing.split() or "cgroup.controllers" in listing.split(), listing


def test_no_pivot(rt):
    """runc `create --no-pivot` (reference §3): the container still sees only
    its rootfs as / (set up with MS_MOVE + chroot instead of pivot_root)."""
    ctr = rt.container(["ls", "-a", "/"])
    out = ctr.run("--no-pivot")
    assert set(out.split()) - {".", ".."} == set(os.listdir(ctr.rootfs))


def test_bind_mount_flags(rt):
    """config.md "Mounts" options `nosuid`, `nodev`, `noexec`, `ro` on a bind
    mount (they need a remount after MS_BIND; a runtime that skips it
    silently ignores them)."""
    src = host_dir(rt, "flagsrc")
    with open(os.path.join(src, "prog"), "w") as f:
        f.write("#!/bin/sh\necho executed\n")
    os.chmod(os.path.join(src, "prog"), 0o755)
    ctr = rt.container(sh("/data/prog 2>/dev/null || echo not-executed; cat /proc/self/mountinfo"),
                       mutate=lambda c: add_mount(c, "/data", src, ["bind", "nosuid", "nodev", "noexec", "ro"]))
    out = ctr.run()
    assert out.startswith("not-executed\n"), out
    entry = mountinfo_entry(out, "/data")
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(entry["options"]), entry


def test_recursive_read_only(rt, nested_source):
    """config.md "Mounts" option `rro` (SHOULD, mount_setattr on kernel ≥
    5.12): the submounts of an rbind are read-only too."""
    ctr = rt.container(sh("touch /data/sub/x 2>/dev/null && echo sub-writable || echo sub-ro"),
                       mutate=lambda c: add_mount(c, "/data", nested_source, ["rbind", "rro"]))
    assert ctr.run() == "sub-ro\n"


def test_relative_mount_destination(rt):
    """config.md "Mounts" (runtime-spec 1.2): a relative `destination` is
    relative to the container's /."""
    src = host_dir(rt, "relsrc", {"f": "relative\n"})
    ctr = rt.container(["cat", "/reldata/f"], mutate=lambda c: add_mount(c, "reldata", src, ["bind"]))
    assert ctr.run() == "relative\n"


def test_readonly_and_masked_missing_paths_ignored(rt):
    """config-linux.md "Masked Paths" / "Readonly Paths": entries that do not
    exist in the container are skipped, not an error."""
    def mutate(config):
        config["linux"]["readonlyPaths"] = ["/does/not/exist", "/proc/sys"]
        config["linux"]["maskedPaths"] = ["/does/not/exist/either"]
    ctr = rt.container(sh("echo ok"), mutate=mutate)
    assert ctr.run() == "ok\n"


# -- idmapped mounts (config.md "Mounts": uidMappings/gidMappings, options idmap/ridmap) --

def owned_source(rt, name, owners):
    """A host dir with one file per (name, uid, gid)."""
    src = host_dir(rt, name)
    for fname, uid, gid in owners:
        path = os.path.join(src, fname)
        with open(path, "w") as f:
            f.write("x\n")
        os.chown(path, uid, gid)
    return src


def idmapped(destination, source, options, uid_host=None, size=1):
    def mutate(config):
        mount = {"destination": destination, "type": "bind", "source": source, "options": options}
        if uid_host is not None:
            mount["uidMappings"] = [{"containerID": 0, "hostID": uid_host, "size": size}]
            mount["gidMappings"] = [{"containerID": 0, "hostID": uid_host + 1, "size": size}]
        config["mounts"].append(mount)
    return mutate


def test_idmapped_bind_mount(rt):
    """config.md "Mounts" `uidMappings`/`gidMappings`: an id `containerID` on
    the source filesystem is seen as `hostID` through the mount; ids outside
    the mappings show as the overflow id.  The host's files are unchanged."""
    src = owned_source(rt, "idsrc", [("zero", 0, 0), ("one", 1, 1)])
    ctr = rt.container(sh("stat -c %u:%g /data/zero /data/one"),
                       mutate=idmapped("/data", src, ["rbind", "idmap"], uid_host=1000))
    assert ctr.run() == "1000:1001\n65534:65534\n"
    st = os.stat(os.path.join(src, "zero"))
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_idmapped_mount_mappings_alone_imply_idmap(rt):
    """config.md "Mounts": mappings without the `idmap` option still make an
    idmapped mount (never a plain bind that silently ignores them)."""
    src = owned_source(rt, "idsrc", [("zero", 0, 0)])
    ctr = rt.container(sh("stat -c %u:%g /data/zero"), mutate=idmapped("/data", src, ["rbind"], uid_host=2000))
    assert ctr.run() == "2000:2001\n"


@pytest.mark.parametrize("option,inner", [("idmap", "0:0"), ("ridmap", "3000:3001")])
def test_idmap_maps_the_top_mount_ridmap_the_tree(rt, nested_source, option, inner):
    """runtime-spec 1.2 options: `idmap` maps only the mount itself, `ridmap`
    every mount of an rbind tree (both files are root's on the host)."""
    with open(os.path.join(nested_source, "top"), "w") as f:
        f.write("x\n")
    ctr = rt.container(sh("stat -c %u:%g /data/top /data/sub/marker"),
                       mutate=idmapped("/data", nested_source, ["rbind", option], uid_host=3000))
    assert ctr.run() == f"3000:3001\n{inner}\n"


def test_idmap_without_mappings_takes_the_user_namespace(rt):
    """config.md "Mounts": `idmap` without mappings of its own uses the
    container's user-namespace mappings, so files the source's root owns
    belong to the container's root."""
    src = owned_source(rt, "idsrc", [("zero", 0, 0)])

    def mutate(config):
        config["linux"]["namespaces"] = [{"type": t} for t in ("mount", "user", "pid", "ipc", "uts", "network")]
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["mounts"] = [m for m in config["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        idmapped("/data", src, ["rbind", "idmap"])(config)
    ctr = rt.container(sh("stat -c %u:%g /data/zero"), mutate=mutate)
    os.makedirs(os.path.join(ctr.rootfs, "data"))  # the container's root may not write the host-owned rootfs
    assert ctr.run() == "0:0\n"


@pytest.mark.parametrize("case", ["not-bind", "no-userns"])
def test_idmapped_mount_refusals(rt, case):
    """An idmapped mount that cannot be made is an error naming the mount,
    not a plain mount: on a non-bind mount, or `idmap` with no mappings and
    no user namespace to take them from."""
    src = owned_source(rt, "idsrc", [("zero", 0, 0)])

    def mutate(config):
        if case == "not-bind":
            config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                     "options": ["idmap"],
                                     "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                                     "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
        else:
            idmapped("/data", src, ["rbind", "idmap"])(config)
    ctr = rt.container(["true"], mutate=mutate)
    res = ctr.create(check=False)
    assert res.returncode != 0
    assert "/data" in res.stderr  # the error names the mount
