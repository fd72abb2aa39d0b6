"""ocirt-mkcw with real podman: podman image in, podman image out, run with runc.

Podman runs with private storage under /var/tmp (vfs driver) and a test
containers.conf, so nothing touches the host's images; the busybox source
image is made with ``podman import`` (no registry).
"""
import json
import os
import shutil
import subprocess
import tarfile
import time

import pytest

from tests.mkcw.helpers import (PASSPHRASE, decrypt_payload, dump_ext4, grep_tree, read_layout, run_mkcw,
                                tree)
from tests.support import make_rootfs

pytestmark = pytest.mark.podman

MARKER = b"ocirt-host-can-see-3b1e55"
RUNC = shutil.which("runc") or "/usr/sbin/runc"
FAST_KDF = ["--kdf-seconds", "0.02"]


@pytest.fixture(scope="module")
def pm(tmp_path_factory):
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    base = tmp_path_factory.mktemp("mkcwpodman")
    store = f"/var/tmp/ocirt-mkcw-test-{os.getpid()}-{os.urandom(3).hex()}"
    os.makedirs(store)
    conf = base / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                    '[network]\nnetwork_backend = "netavark"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    storage = base / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{store}/root"\nrunroot = "{store}/run"\n')
    scratch = base / "scratch"
    scratch.mkdir()
    env = {"CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage), "TMPDIR": str(scratch)}

    class Podman:
        def __init__(self):
            self.env, self.base, self.store, self.scratch = env, base, store, scratch

        def __call__(self, *args, check=True, **kw):
            kw.setdefault("capture_output", True)
            kw.setdefault("timeout", 180)
            res = subprocess.run(["podman", *args], env=dict(os.environ, **env), **kw)
            if check and res.returncode != 0:
                raise AssertionError(f"podman {args}: {res.stderr}")
            return res

        def mkcw(self, *args, **kw):
            return run_mkcw(*args, env=env, **kw)

    p = Podman()
    rootfs = make_rootfs(str(base / "rootfs"), applets=["sh", "cat", "echo", "sleep", "true"])
    with open(os.path.join(rootfs, "etc", "secret.txt"), "wb") as f:
        f.write(MARKER + b"\n")
    layer = base / "rootfs.tar"
    with tarfile.open(layer, "w") as tar:
        tar.add(rootfs, arcname=".")
    p("import", "--change", 'CMD ["/bin/sh","-c","echo hello from busybox"]', "--change", "ENV PATH=/bin",
      str(layer), "localhost/mkcw-src:1")
    p.rootfs = rootfs
    yield p
    p("rm", "-a", "-f", check=False)
    p("rmi", "-a", "-f", check=False)
    subprocess.run(["umount", "-R", store], capture_output=True)
    shutil.rmtree(store, ignore_errors=True)


def _mounted(pm, image):
    return pm("image", "mount", image, text=True).stdout.strip()


def test_podman_to_podman_runs_refusal_with_runc(pm):
    res = pm.mkcw("-p", PASSPHRASE.decode(), "-w", "test", *FAST_KDF, "localhost/mkcw-src:1", "localhost/mkcw-cw:1")
    assert res.returncode == 0, res.stderr
    images = pm("images", "--format", "{{.Repository}}:{{.Tag}}", text=True).stdout.split()
    assert "localhost/mkcw-cw:1" in images
    assert not [i for i in images if "ocirt-mkcw" in i]          # the temporary load name is gone
    inspect = json.loads(pm("image", "inspect", "localhost/mkcw-cw:1", text=True).stdout)[0]
    assert inspect["Config"].get("Entrypoint") == ["/entrypoint"] and not inspect["Config"].get("Cmd")
    assert len(inspect["RootFS"]["Layers"]) == 1

    run = pm("run", "--rm", "--runtime", RUNC, "--network", "none", "localhost/mkcw-cw:1", check=False, text=True)
    assert run.returncode == 1
    assert run.stdout == ""
    assert "This image is designed to be run as a confidential workload using libkrun." in run.stderr

    # the disk in podman's store decrypts to the source image's files
    root = _mounted(pm, "localhost/mkcw-cw:1")
    try:
        assert sorted(os.listdir(root)) == ["disk.img", "entrypoint", "krun-sev.json", "tmp"]
        assert os.stat(os.path.join(root, "tmp")).st_mode & 0o7777 == 0o1777
        assert os.stat(os.path.join(root, "disk.img")).st_mode & 0o777 == 0o600
        plain = decrypt_payload(os.path.join(root, "disk.img"), str(pm.base / "plain.ext4"))
        assert not grep_tree(root, MARKER)
    finally:
        pm("image", "unmount", "localhost/mkcw-cw:1", check=False)
    assert subprocess.run(["e2fsck", "-fn", plain], capture_output=True).returncode == 0
    files = tree(dump_ext4(plain, str(pm.base / "files")), dir_mask=0o777)
    kc = json.loads(files.pop(".krun_config.json")[2])
    assert kc["config"]["Cmd"] == ["/bin/sh", "-c", "echo hello from busybox"]
    assert kc["config"]["Env"] == ["PATH=/bin"]
    files.pop("lost+found")
    src = _mounted(pm, "localhost/mkcw-src:1")
    try:
        assert files == tree(src, dir_mask=0o777)
    finally:
        pm("image", "unmount", "localhost/mkcw-src:1", check=False)
    assert os.listdir(pm.scratch) == []


def test_no_plaintext_in_any_layer_or_blob(pm):
    """The marker in the source rootfs is nowhere in DEST: saved blobs, stored layer, temp files."""
    res = pm.mkcw("-p", PASSPHRASE.decode(), *FAST_KDF, "localhost/mkcw-src:1", "localhost/mkcw-leak:1")
    assert res.returncode == 0, res.stderr
    saved = pm.base / "leak-saved"
    pm("save", "--format", "oci-dir", "-o", str(saved), "localhost/mkcw-leak:1")
    manifest, config, layers = read_layout(str(saved))
    assert len(layers) == 1
    assert not grep_tree(str(saved), MARKER)
    layer_dir = _mounted(pm, "localhost/mkcw-leak:1")
    try:
        assert not grep_tree(layer_dir, MARKER)
    finally:
        pm("image", "unmount", "localhost/mkcw-leak:1", check=False)
    assert os.listdir(pm.scratch) == []
    # the check can fail: the same scan finds the marker in the source image
    src = _mounted(pm, "localhost/mkcw-src:1")
    try:
        assert grep_tree(src, MARKER)
    finally:
        pm("image", "unmount", "localhost/mkcw-src:1", check=False)


def test_oci_archive_dest_loads_and_runs(pm):
    dest = pm.base / "cw.tar"
    res = pm.mkcw("-p", "x", *FAST_KDF, "-t", "sev", f"dir:{pm.rootfs}", f"oci-archive:{dest}")
    assert res.returncode == 0, res.stderr
    loaded = pm("load", "-i", str(dest), text=True).stdout
    image_id = res.stdout.strip().split(":")[-1]
    assert "Loaded image" in loaded
    run = pm("run", "--rm", "--runtime", RUNC, "--network", "none", loaded.split(":", 1)[1].strip(),
             check=False, text=True)
    assert run.returncode == 1 and "confidential workload using libkrun" in run.stderr
    assert image_id


def test_missing_podman_image_is_one_line(pm):
    res = pm.mkcw("-p", "x", *FAST_KDF, "localhost/does-not-exist:1", "localhost/never:1")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "ocirt-mkcw: SOURCE localhost/does-not-exist:1: no such image in podman's store"]
    assert os.listdir(pm.scratch) == []


def _peek_memory(pid, needle):
    """Read every readable private mapping of ``pid`` with python-ptrace; True if ``needle`` is there."""
    from ptrace.debugger import PtraceDebugger
    dbg = PtraceDebugger()
    try:
        proc = dbg.addProcess(pid, False)
        try:
            for m in proc.readMappings():
                if "r" not in m.permissions or m.pathname in ("[vvar]", "[vsyscall]", "[vdso]"):
                    continue
                try:
                    data = proc.readBytes(m.start, m.end - m.start)
                except Exception:
                    continue
                if needle in data:
                    return True
            return False
        finally:
            proc.detach()
    finally:
        dbg.quit()


def test_what_the_host_can_see(pm):
    """A host process reads a plain container's secret from its memory and from image storage;
    the confidential workload image's storage holds no plaintext."""
    pytest.importorskip("ptrace", reason="python-ptrace is not installed")
    # plain container: the shell reads the secret into a variable and waits
    cid = pm("run", "-d", "--runtime", RUNC, "--network", "none", "localhost/mkcw-src:1", "sh", "-c",
             "read s < /etc/secret.txt; while :; do sleep 1; done", text=True).stdout.strip()
    try:
        pid = int(pm("inspect", "-f", "{{.State.Pid}}", cid, text=True).stdout)
        deadline = time.monotonic() + 10
        seen = False
        while time.monotonic() < deadline and not seen:
            seen = _peek_memory(pid, MARKER)
            time.sleep(0.1)
        assert seen, "the host could not read the plain container's secret from its memory"
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert MARKER not in f.read()          # found in memory, not merely on the command line
    finally:
        pm("rm", "-f", "-t", "0", cid, check=False)
    src = _mounted(pm, "localhost/mkcw-src:1")
    try:
        assert grep_tree(src, MARKER), "plain image storage should expose the secret"
    finally:
        pm("image", "unmount", "localhost/mkcw-src:1", check=False)

    # confidential workload image: neither its layer nor its disk holds the secret
    res = pm.mkcw("-p", PASSPHRASE.decode(), *FAST_KDF, "localhost/mkcw-src:1", "localhost/mkcw-see:1")
    assert res.returncode == 0, res.stderr
    root = _mounted(pm, "localhost/mkcw-see:1")
    try:
        assert not grep_tree(root, MARKER)
    finally:
        pm("image", "unmount", "localhost/mkcw-see:1", check=False)


def test_podman_saved_archive_and_layout_sources(pm):
    """OCI archives and layouts written by podman itself convert to the same files."""
    archive = pm.base / "saved.tar"
    layout = pm.base / "saved-dir"
    pm("save", "--format", "oci-archive", "-o", str(archive), "localhost/mkcw-src:1")
    pm("save", "--format", "oci-dir", "-o", str(layout), "localhost/mkcw-src:1")
    for i, source in enumerate((str(archive), str(layout))):
        dest = pm.base / f"from-saved-{i}"
        res = pm.mkcw("-p", PASSPHRASE.decode(), *FAST_KDF, source, f"oci:{dest}")
        assert res.returncode == 0, res.stderr
        _, _, layers = read_layout(str(dest))
        with tarfile.open(layers[0]) as tar:
            tar.extract("disk.img", pm.base / f"saved-layer-{i}", filter="fully_trusted")
        plain = decrypt_payload(str(pm.base / f"saved-layer-{i}" / "disk.img"), str(pm.base / f"saved-{i}.ext4"))
        files = tree(dump_ext4(plain, str(pm.base / f"saved-files-{i}")), dir_mask=0o777)
        kc = json.loads(files.pop(".krun_config.json")[2])
        assert kc["config"]["Cmd"] == ["/bin/sh", "-c", "echo hello from busybox"]
        files.pop("lost+found")
        assert files == tree(pm.rootfs, dir_mask=0o777)
    assert os.listdir(pm.scratch) == []


@pytest.mark.parametrize("source", ["localhost/mkcw-src:1", "big"])
def test_bad_podman_dest_name_leaves_no_image(pm, source):
    """Small results are loaded from an archive on stdin, big ones (> 64 MiB) from a directory then tagged."""
    if source == "big":
        big = pm.base / "big-rootfs"
        if not big.exists():
            shutil.copytree(pm.rootfs, big, symlinks=True)
            (big / "random.bin").write_bytes(os.urandom(56 << 20))
        source = f"dir:{big}"
    before = pm("images", "-q", "--no-trunc", text=True).stdout.split()
    res = pm.mkcw("-p", "x", *FAST_KDF, source, "Not A Valid:Name")
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid reference format" in lines[0], res.stderr
    assert pm("images", "-q", "--no-trunc", text=True).stdout.split() == before
    assert os.listdir(pm.scratch) == []


def test_big_result_loads_from_a_directory_and_is_named(pm):
    big = pm.base / "big-rootfs"
    if not big.exists():
        shutil.copytree(pm.rootfs, big, symlinks=True)
        (big / "random.bin").write_bytes(os.urandom(56 << 20))
    res = pm.mkcw("-p", "x", *FAST_KDF, f"dir:{big}", "localhost/mkcw-big:1")
    assert res.returncode == 0, res.stderr
    images = pm("images", "--format", "{{.Repository}}:{{.Tag}}", text=True).stdout.split()
    assert "localhost/mkcw-big:1" in images
    assert not [i for i in images if "ocirt-mkcw" in i]          # the directory-derived name was removed
    size = int(pm("image", "inspect", "--format", "{{.Size}}", "localhost/mkcw-big:1", text=True).stdout)
    assert size > 64 << 20
    assert os.listdir(pm.scratch) == []


def test_sigterm_during_podman_load_leaves_nothing(pm):
    """Interrupted while podman copies the result in: no image, no podman temp file, no scratch."""
    import signal
    from tests.mkcw.helpers import mkcw_bin
    mid = pm.base / "mid-rootfs"
    if not mid.exists():
        shutil.copytree(pm.rootfs, mid, symlinks=True)
        (mid / "random.bin").write_bytes(os.urandom(40 << 20))      # still loaded through stdin (<= 64 MiB)
    before = pm("images", "-q", "--no-trunc", text=True).stdout.split()
    proc = subprocess.Popen([mkcw_bin(), "-p", "x", *FAST_KDF, f"dir:{mid}", "localhost/mkcw-interrupted:1"],
                            env=dict(os.environ, OCIRT_MKCW_TIMES="1", **pm.env), stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.endswith(" writing destination\n"):
            break
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    proc.wait(60)
    if proc.returncode == 0:
        pytest.skip("the load finished before the signal arrived")
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert os.listdir(pm.scratch) == []
    assert pm("images", "-q", "--no-trunc", text=True).stdout.split() == before
