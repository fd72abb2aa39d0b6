"""podman end to end with ocirt's krun handler and the libkrun TEST DOUBLE.

podman 4.3 runs ocirt through a two-line wrapper that points ocirt at the
double (podman does not pass its environment to the runtime).  Private
storage under /var/tmp, cgroupfs, file events, no network, images made by
``podman import`` of busybox-static trees: no registry access.  The double
boots no VM (see tests/krun/libkrun_double.c); what it proves is that podman
+ ocirt drive libkrun correctly and that output, exit codes, stop, kill and
exec behave as specified around a VMM process.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

from tests import support
from tests.krun import double
from tests.krun.double import SNP_CONFIG

pytestmark = [
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
    pytest.mark.skipif(not double.gcc_available(), reason="gcc is needed to build the libkrun test double"),
]

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
CW_STUB = "#!/bin/sh\necho 'This image is designed to be run as a confidential workload using libkrun.' >&2\nexit 1\n"


class Podman:
    def __init__(self, base):
        self.base = base
        self.log = os.path.join(base, "calls.log")
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(base, "containers.conf"))
        self.cmd = ["podman", "--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "runroot"),
                    "--storage-driver", "vfs", "--hooks-dir", os.path.join(base, "hooks.d")]

    def __call__(self, *args, runtime="ocirt", timeout=120):
        runtime_args = ["--runtime", os.path.join(self.base, "bin", runtime)] if runtime else []
        res = subprocess.run(self.cmd + runtime_args + list(args), capture_output=True, text=True, env=self.env,
                             timeout=timeout)
        res.stderr = "\n".join(line for line in res.stderr.splitlines() if "CNI config" not in line)
        return res

    def calls(self):
        return double.read_calls(self.log)

    def reset_log(self):
        open(self.log, "w").close()


def _image_tar(path, cw):
    tree = tempfile.mkdtemp(dir=os.path.dirname(path))
    support.make_rootfs(tree)
    if cw:   # the shape of a buildah mkcw image (confidential-workloads.md §2)
        with open(os.path.join(tree, "krun-sev.json"), "w") as f:
            json.dump(SNP_CONFIG, f)
        with open(os.path.join(tree, "disk.img"), "wb") as f:
            f.write(b"\0" * 4096)
        with open(os.path.join(tree, "entrypoint"), "w") as f:
            f.write(CW_STUB)
        os.chmod(os.path.join(tree, "entrypoint"), 0o755)
    with tarfile.open(path, "w") as tar:
        for name in sorted(os.listdir(tree)):
            tar.add(os.path.join(tree, name), arcname=name)
    shutil.rmtree(tree)


@pytest.fixture(scope="module")
def podman():
    base = tempfile.mkdtemp(prefix="ocirt-krun-podman-", dir="/var/tmp")
    p = Podman(base)
    try:
        with open(os.path.join(base, "containers.conf"), "w") as f:
            f.write(CONTAINERS_CONF)
        libdir = double.build(os.path.join(base, "libkrun-double"))
        bindir = os.path.join(base, "bin")
        os.makedirs(bindir)
        build = os.path.dirname(support.ocirt_bin())
        for name, target in (("ocirt", "ocirt"), ("krun", "krun")):
            # ``krun`` keeps its name: ocirt started as krun applies the handler to every container
            with open(os.path.join(bindir, name), "w") as f:
                f.write(f"#!/bin/sh\nexport OCIRT_LIBKRUN_DIR={libdir} LIBKRUN_DOUBLE_LOG={p.log}\n"
                        f"exec {os.path.join(build, target)} \"$@\"\n")
            os.chmod(os.path.join(bindir, name), 0o755)
        os.symlink(shutil.which("runc") or "/usr/sbin/runc", os.path.join(bindir, "runc"))
        subprocess.run(["sh", os.path.join(support.REPO, "hooks", "install.sh"), os.path.join(base, "hooks.d"),
                        os.path.join(base, "libexec"), os.path.realpath(sys.executable)], check=True,
                       capture_output=True)
        for name, cw in (("krun-bb", False), ("krun-cw", True)):
            tar = os.path.join(base, f"{name}.tar")
            _image_tar(tar, cw)
            change = ["--change", 'ENTRYPOINT=["/entrypoint"]'] if cw else []
            res = p("import", *change, tar, f"localhost/{name}:test", runtime=None)
            assert res.returncode == 0, res.stderr
        yield p
    finally:
        p("rm", "--all", "--force", "--time", "0", runtime=None)
        shutil.rmtree(base, ignore_errors=True)


RUN = ("run", "--network", "none", "--annotation", "run.oci.handler=krun")


def test_run_output_and_exit_code(podman):
    podman.reset_log()
    res = podman(*RUN, "--rm", "localhost/krun-bb:test", "sh", "-c", "echo hello from krun; exit 3")
    assert res.returncode == 3, res.stderr
    assert res.stdout == "hello from krun\n"
    names = double.call_names(podman.calls())
    assert names[-1] == "krun_start_enter" and "krun_add_virtiofs2" in names
    env = [c for c in podman.calls() if c["call"] == "krun_set_env"][0]["args"][1]
    assert any(e.startswith("PATH=") for e in env) and not any(e.startswith("CONTAINERS_CONF=") for e in env)


def test_vm_size_follows_the_container_limits(podman):
    podman.reset_log()
    res = podman(*RUN, "--rm", "--memory", "300m", "--cpuset-cpus", "0", "localhost/krun-bb:test", "true")
    assert res.returncode == 0, res.stderr
    (vm,) = [c for c in podman.calls() if c["call"] == "krun_set_vm_config"]
    assert vm["args"][1:] == [1, 300]   # cpus from the container's affinity, RAM from its memory limit


def test_stop_ends_the_vm_within_the_timeout(podman):
    res = podman(*RUN, "-d", "--name", "k-stop", "localhost/krun-bb:test", "sleep", "100")
    assert res.returncode == 0, res.stderr
    start = time.monotonic()
    res = podman("stop", "--time", "10", "k-stop")
    elapsed = time.monotonic() - start
    assert res.returncode == 0, res.stderr
    assert elapsed < 5, f"podman stop took {elapsed:.1f}s: SIGTERM did not end the VM"
    res = podman("inspect", "--format", "{{.State.ExitCode}}", "k-stop")
    assert res.stdout.strip() == "143"
    podman("rm", "k-stop")


def test_kill(podman):
    res = podman(*RUN, "-d", "--name", "k-kill", "localhost/krun-bb:test", "sleep", "100")
    assert res.returncode == 0, res.stderr
    assert podman("kill", "k-kill").returncode == 0
    res = podman("wait", "k-kill")
    assert res.stdout.strip() == "137", res.stderr
    podman("rm", "k-kill")


def test_exec_gives_a_specific_error(podman):
    res = podman(*RUN, "-d", "--name", "k-exec", "localhost/krun-bb:test", "sleep", "100")
    assert res.returncode == 0, res.stderr
    try:
        res = podman("exec", "k-exec", "true")
        assert res.returncode != 0
        assert "exec is not supported for krun containers" in res.stderr, res.stderr
    finally:
        podman("rm", "--force", "--time", "0", "k-exec")


def test_runtime_named_krun_applies_the_handler(podman):
    podman.reset_log()
    res = podman("run", "--rm", "--network", "none", "localhost/krun-bb:test", "echo", "via krun", runtime="krun")
    assert res.returncode == 0 and res.stdout == "via krun\n", res.stderr
    assert "krun_start_enter" in double.call_names(podman.calls())


@pytest.mark.parametrize("runtime", ["ocirt", "runc"])
def test_hook_refuses_cw_image_without_the_tee_handler(podman, runtime):
    res = podman("run", "--rm", "--network", "none", "localhost/krun-cw:test", runtime=runtime)
    assert res.returncode != 0
    assert f"refusing to start a confidential-workload image under {runtime}" in res.stderr, res.stderr
    assert "--annotation run.oci.handler=krun-sev" in res.stderr
    assert "This image is designed" not in res.stderr   # the stub never ran


@pytest.mark.parametrize("runtime,args", [("ocirt", ("--annotation", "run.oci.handler=krun-sev")), ("krun", ())])
def test_cw_image_goes_to_the_sev_handler(podman, runtime, args):
    # This host has no /dev/sev: the TEE handler is chosen and says so clearly at create.
    res = podman("run", "--rm", "--network", "none", *args, "localhost/krun-cw:test", runtime=runtime)
    assert res.returncode != 0
    assert "krun-sev: /dev/sev unavailable: No such file or directory" in res.stderr, res.stderr
