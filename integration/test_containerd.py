"""containerd's runc shim (io.containerd.runc.v2) driving ocirt for real.

A private containerd (root, state and socket under a temp dir; CRI plugin
off) is started from the Debian package; a busybox-static OCI image is
built and ``ctr image import``ed.  Every test runs against ocirt and, for
comparison, runc (``OCIRT_CONTAINERD_RUNTIMES=runc`` or ``ocirt,runc``).
"""
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
import hashlib
import io

import pytest

from tests.support import APPLETS, BUSYBOX, ocirt_bin

IMAGE = "docker.io/library/ocirt-busybox:test"
NS = "ocirt-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("containerd") or not shutil.which("ctr"),
                                reason="needs root, containerd and ctr")


def _runtimes():
    wanted = os.environ.get("OCIRT_CONTAINERD_RUNTIMES", "ocirt").split(",")
    return [r for r in wanted if r]


def _blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def build_image_tar(path):
    """An OCI image layout tarball: one layer with busybox-static and its applets."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for d in ("bin", "tmp", "etc", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    layer_bytes = layer.getvalue()
    work = tempfile.mkdtemp(prefix="ocirt-img-")
    try:
        blobs = os.path.join(work, "blobs", "sha256")
        layer_desc = _blob(blobs, layer_bytes)
        config = {"architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}
        config_desc = _blob(blobs, json.dumps(config).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}]}
        manifest_desc = _blob(blobs, json.dumps(manifest).encode())
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc,
            "annotations": {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "test"}}]}
        with open(os.path.join(work, "index.json"), "w") as f:
            json.dump(index, f)
        with open(os.path.join(work, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with tarfile.open(path, "w") as tar:
            for name in ("oci-layout", "index.json", "blobs"):
                tar.add(os.path.join(work, name), name)
    finally:
        shutil.rmtree(work)


class Containerd:
    def __init__(self, base):
        self.base = base
        self.socket = os.path.join(base, "containerd.sock")
        config = os.path.join(base, "config.toml")
        with open(config, "w") as f:
            f.write(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
                    f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.socket}"\n'
                    f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
                    f'[debug]\n  address = "{base}/debug.sock"\n')
        self.log = open(os.path.join(base, "containerd.log"), "w")
        self.proc = subprocess.Popen(["containerd", "--config", config], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("containerd did not start: " + open(self.log.name).read()[-2000:])
            time.sleep(0.1)

    def ctr(self, *args, check=True, timeout=60, **kw):
        res = subprocess.run(["ctr", "--address", self.socket, "--namespace", NS, *args],
                             capture_output=True, text=True, timeout=timeout, **kw)
        if check and res.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} failed: {res.stdout}{res.stderr}")
        return res

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def containerd():
    base = tempfile.mkdtemp(prefix="ocirt-ctrd-", dir="/var/tmp")
    daemon = Containerd(base)
    try:
        tar = os.path.join(base, "busybox.tar")
        build_image_tar(tar)
        daemon.ctr("image", "import", "--all-platforms", tar)
        yield daemon
    finally:
        for line in daemon.ctr("task", "ls", "-q", check=False).stdout.split():
            daemon.ctr("task", "kill", "-s", "KILL", line, check=False)
            daemon.ctr("task", "delete", "-f", line, check=False)
        for line in daemon.ctr("container", "ls", "-q", check=False).stdout.split():
            daemon.ctr("container", "delete", line, check=False)
        daemon.stop()
        subprocess.run(["umount", "-R", base], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _binary(runtime):
    return ocirt_bin() if runtime == "ocirt" else shutil.which(runtime) or f"/usr/sbin/{runtime}"


@pytest.fixture(params=_runtimes())
def runtime(request):
    return request.param


def _task_status(d, cid):
    for line in d.ctr("task", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return fields[2]
    return None


def _wait_status(d, cid, status, timeout=10):
    deadline = time.monotonic() + timeout
    while _task_status(d, cid) != status:
        assert time.monotonic() < deadline, f"{cid} never became {status}: {_task_status(d, cid)}"
        time.sleep(0.05)


def test_run_foreground_exit_code(containerd, runtime):
    cid = f"fg-{uuid.uuid4().hex[:8]}"
    res = containerd.ctr("run", "--rm", "--runc-binary", _binary(runtime), IMAGE, cid,
                         "sh", "-c", "echo hello-from-ctr; exit 3", check=False)
    assert res.returncode == 3, res.stderr
    assert "hello-from-ctr" in res.stdout


def test_task_lifecycle_exec_pause_ps_metrics_kill(containerd, runtime):
    d = containerd
    cid = f"lc-{uuid.uuid4().hex[:8]}"
    d.ctr("run", "-d", "--runc-binary", _binary(runtime), "--memory-limit", str(64 << 20), IMAGE, cid,
          "sh", "-c", "sleep 1000 & wait")
    try:
        _wait_status(d, cid, "RUNNING")
        res = d.ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo exec-ok; cat /proc/self/cgroup")
        assert "exec-ok" in res.stdout
        ps = d.ctr("task", "ps", cid).stdout.split()
        pids = [int(x) for x in ps if x.isdigit()]
        assert len(pids) >= 2
        d.ctr("task", "pause", cid)
        _wait_status(d, cid, "PAUSED")
        d.ctr("task", "resume", cid)
        _wait_status(d, cid, "RUNNING")
        metrics = d.ctr("task", "metrics", "--format", "json", cid).stdout
        assert "memory" in metrics.lower() and str(64 << 20) in metrics.replace(",", "")
        d.ctr("task", "kill", "-s", "TERM", "--all", cid)
        _wait_status(d, cid, "STOPPED")
    finally:
        d.ctr("task", "delete", "-f", cid, check=False)
        d.ctr("container", "delete", cid, check=False)
    assert d.ctr("task", "ls", "-q").stdout.split().count(cid) == 0
    assert not os.path.exists(f"/sys/fs/cgroup/memory/{NS}/{cid}")


def test_binary_name_option(containerd, runtime):
    """ctr --runc-binary fills the BinaryName field of the runc shim's Options,
    the field containerd's CRI config sets from `...runtimes.ocirt.options`
    (a --runtime-config-path options file does not select the binary in
    containerd 1.6: the shim then runs runc).  Check the shim really ran ours."""
    d = containerd
    cid = f"bn-{uuid.uuid4().hex[:8]}"
    select = ["--runc-binary", _binary(runtime)]
    d.ctr("run", "-d", *select, IMAGE, cid, "sleep", "1000")
    try:
        _wait_status(d, cid, "RUNNING")
        root = f"/run/containerd/runc/{NS}"
        state_dir = os.path.join(root, cid)
        assert os.path.isdir(state_dir)
        if runtime == "ocirt":
            assert os.path.exists(os.path.join(state_dir, "state.json"))
            with open(os.path.join(state_dir, "state.json")) as f:
                state = json.load(f)
            assert state["cgroup"]["cgroupsPath"] == f"/{NS}/{cid}"
    finally:
        d.ctr("task", "kill", "-s", "KILL", cid, check=False)
        time.sleep(0.2)
        d.ctr("task", "delete", "-f", cid, check=False)
        d.ctr("container", "delete", cid, check=False)
