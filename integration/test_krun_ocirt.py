"""ocirt's krun handler end to end: the real ocirt (create/start/run/kill/
exec/delete/features) with the libkrun TEST DOUBLE standing in for libkrun.

The double (tests/krun/libkrun_double.c) boots no VM: at krun_start_enter it
runs the workload described by /.krun_config.json in a child of the init
process, so output, exit codes and signals behave as through a VMM, and it
records every libkrun call.  One test uses a real libkrun.so.1 where the
host has one.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import support
from tests.krun import double
from tests.krun.double import SNP_CONFIG, krun_bundle

LIBDIR_ENV = "OCIRT_LIBKRUN_DIR"
pytestmark = pytest.mark.skipif(not double.gcc_available(), reason="gcc is needed to build the libkrun test double")


@pytest.fixture(scope="module")
def double_dir(tmp_path_factory):
    return double.build(str(tmp_path_factory.mktemp("libkrun-double")))


@pytest.fixture
def env(tmp_path, double_dir):
    return dict(os.environ, OCIRT_LIBKRUN_DIR=double_dir, LIBKRUN_DOUBLE_LOG=str(tmp_path / "calls.log"))


@pytest.fixture
def root(tmp_path):
    r = str(tmp_path / "state")
    yield r
    for cid in os.listdir(r) if os.path.isdir(r) else []:
        support.run_ocirt("delete", "--force", cid, root=r)


def calls(env):
    return double.read_calls(env["LIBKRUN_DOUBLE_LOG"])


def named(env, name):
    return [c for c in calls(env) if c["call"] == name]


def ocirt(root, env, *args, **kw):
    return support.run_ocirt(*args, root=root, env=env, **kw)


def state(root, env, cid):
    res = ocirt(root, env, "state", cid)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_status(root, env, cid, wanted, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        status = state(root, env, cid)["status"]
        if status == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def create_detached(root, env, bundle, cid, tmp_path):
    """create with the init's stdio on a file: a pipe would be held open by the container."""
    out = open(tmp_path / f"{cid}.out", "w+")
    res = subprocess.run([support.ocirt_bin(), "--root", root, "create", "--bundle", bundle, cid],
                         stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env, timeout=60)
    out.seek(0)
    return res.returncode, out.read()


def test_run_output_and_exit_code(tmp_path, root, env):
    bundle = krun_bundle(tmp_path, args=["sh", "-c", "echo out; echo err >&2; exit 5"],
                         annotations={"run.oci.handler": "krun"})
    res = ocirt(root, env, "run", "--bundle", bundle, "k-run")
    assert res.returncode == 5, res.stderr
    assert res.stdout == "out\n" and "err\n" in res.stderr
    assert double.call_names(calls(env))[-1] == "krun_start_enter"


def test_lifecycle_state_exec_sigterm_delete(tmp_path, root, env):
    bundle = krun_bundle(tmp_path, args=["sleep", "60"], annotations={"run.oci.handler": "krun"})
    rc, output = create_detached(root, env, bundle, "k-life", tmp_path)
    assert rc == 0, output
    st = state(root, env, "k-life")
    assert st["status"] == "created" and st["pid"] > 0
    with open(os.path.join(root, "k-life", "state.json")) as f:
        assert json.load(f)["handler"] == "krun"
    # the context exists before start; the VM is entered only at start
    assert named(env, "krun_create_ctx") and not named(env, "krun_start_enter")
    assert ocirt(root, env, "start", "k-life").returncode == 0
    deadline = time.monotonic() + 10
    while not named(env, "(workload)") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(root, env, "k-life")["status"] == "running"
    with open(f"/proc/{st['pid']}/task/{st['pid']}/children") as f:
        children = f.read().split()
    assert len(children) == 1   # the init is the "VMM"; the double's workload is its child
    res = ocirt(root, env, "exec", "k-life", "true")
    assert res.returncode != 0   # the exit status of a failed exec is the core's (255, as runc)
    assert "exec is not supported for krun containers" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    # stop policy: SIGTERM powers the VM off at once (the pid-ns init would otherwise ignore it)
    start = time.monotonic()
    assert ocirt(root, env, "kill", "k-life", "TERM").returncode == 0
    assert wait_status(root, env, "k-life", "stopped", timeout=5) == "stopped"
    assert time.monotonic() - start < 5
    assert ocirt(root, env, "delete", "k-life").returncode == 0
    assert not os.path.exists(os.path.join(root, "k-life"))


def test_sigkill(tmp_path, root, env):
    bundle = krun_bundle(tmp_path, args=["sleep", "60"], annotations={"run.oci.handler": "krun"})
    rc, output = create_detached(root, env, bundle, "k-kill", tmp_path)
    assert rc == 0, output
    assert ocirt(root, env, "start", "k-kill").returncode == 0
    assert ocirt(root, env, "kill", "k-kill", "KILL").returncode == 0
    assert wait_status(root, env, "k-kill", "stopped") == "stopped"


def test_run_exit_code_after_sigterm(tmp_path, root, env):
    bundle = krun_bundle(tmp_path, args=["sleep", "60"], annotations={"run.oci.handler": "krun"})
    out = open(tmp_path / "run.out", "w+")
    proc = subprocess.Popen([support.ocirt_bin(), "--root", root, "run", "--bundle", bundle, "k-term"],
                            stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 20
        while not named(env, "(workload)"):
            assert time.monotonic() < deadline and proc.poll() is None, open(tmp_path / "run.out").read()
            time.sleep(0.05)
        assert ocirt(root, env, "kill", "k-term", "TERM").returncode == 0
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_program_name_krun(tmp_path, root, env):
    bundle = krun_bundle(tmp_path, args=["sh", "-c", "echo via-krun"])
    krun = os.path.join(os.path.dirname(support.ocirt_bin()), "krun")
    res = subprocess.run([krun, "--root", root, "run", "--bundle", bundle, "k-prog"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 0 and res.stdout == "via-krun\n", res.stderr
    assert named(env, "krun_start_enter")


def test_tdx_records_the_tee_calls(tmp_path, root, env):
    tee = {**SNP_CONFIG, "tee": "tdx", "cpus": 1, "ram_mib": 1024}
    bundle = krun_bundle(tmp_path, args=["/entrypoint"], annotations={"run.oci.handler": "krun"}, tee=tee)
    res = ocirt(root, env, "run", "--bundle", bundle, "k-tdx")
    assert res.returncode == 0, res.stderr
    assert "TEE boot of /disk.img with /krun-sev.json is not simulated" in res.stderr
    assert {c["variant"] for c in calls(env)} == {2}
    assert [c["args"][1:] for c in named(env, "krun_set_vm_config")] == [[1, 1024]]
    assert [c["args"][1] for c in named(env, "krun_set_root_disk")] == ["/disk.img"]
    assert [c["args"][1] for c in named(env, "krun_set_tee_config_file")] == ["/krun-sev.json"]


@pytest.mark.parametrize("annotations,tee,message", [
    ({"run.oci.handler": "krun", "krun.cpus": "lots"}, None, "annotations.krun.cpus: 'lots' is not an integer"),
    ({"run.oci.handler": "krun-sev"}, SNP_CONFIG, "krun-sev: /dev/sev unavailable"),
    ({"run.oci.handler": "krun-sev"}, None, "krun-sev.json: No such file or directory"),
    ({"run.oci.handler": "vm"}, None, "annotations.run.oci.handler: unknown handler 'vm'"),
])
def test_create_errors_are_one_line_and_leave_nothing(tmp_path, root, env, annotations, tee, message):
    bundle = krun_bundle(tmp_path, annotations=annotations, tee=tee)
    res = ocirt(root, env, "create", "--bundle", bundle, "k-bad")
    assert res.returncode == 1
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not os.path.exists(os.path.join(root, "k-bad"))
    assert not named(env, "krun_create_ctx")


def test_missing_library_leaves_nothing(tmp_path, root, env):
    bundle = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"})
    empty = tmp_path / "empty"
    empty.mkdir()
    res = ocirt(root, dict(env, OCIRT_LIBKRUN_DIR=str(empty)), "create", "--bundle", bundle, "k-nolib")
    assert res.returncode == 1
    assert f"krun: {LIBDIR_ENV}: {empty}/libkrun.so.1: No such file or directory" in res.stderr
    assert not os.path.exists(os.path.join(root, "k-nolib"))
    assert not os.path.exists(os.path.join(bundle, "rootfs", ".krun_config.json"))


def test_features_lists_handlers_and_variants(root, env):
    res = ocirt(root, env, "features")
    assert res.returncode == 0, res.stderr
    annotations = json.loads(res.stdout)["annotations"]
    assert annotations["run.oci.ocirt.handlers"] == "krun,krun-sev,krun-tdx"
    assert annotations["run.oci.ocirt.libkrun.variants"] == "krun,krun-sev,krun-tdx"


def _real_libkrun_error():
    import ctypes
    try:
        ctypes.CDLL("libkrun.so.1")
    except OSError as exc:
        return str(exc)
    return None


@pytest.mark.skipif(_real_libkrun_error() is not None,
                    reason=f"needs a real libkrun.so.1 (and libkrunfw), not installed here: {_real_libkrun_error()}")
def test_real_libkrun_boots_the_container(tmp_path, root):
    env = {k: v for k, v in os.environ.items() if k != LIBDIR_ENV}
    bundle = krun_bundle(tmp_path, args=["sh", "-c", "echo from-the-vm; exit 3"],
                         annotations={"run.oci.handler": "krun", "krun.cpus": "1", "krun.ram_mib": "256"})
    res = ocirt(root, env, "run", "--bundle", bundle, "k-real", timeout=120)
    assert res.returncode == 3, res.stderr
    assert "from-the-vm" in res.stdout


def test_sev_records_the_tee_calls(tmp_path, root, env):
    """krun-sev through ocirt, with a stand-in /dev/sev in a private /dev (this host has no SEV)."""
    private_dev = os.path.join(support.REPO, "tests", "krun", "private_dev.py")
    bundle = krun_bundle(tmp_path, args=["/entrypoint"], annotations={"run.oci.handler": "krun-sev"},
                         tee=SNP_CONFIG)
    res = subprocess.run([sys.executable, private_dev, "kvm,sev", "--", support.ocirt_bin(), "--root", root,
                          "run", "--bundle", bundle, "k-sev"], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert {c["variant"] for c in calls(env)} == {1}                   # libkrun-sev.so.1
    assert [c["args"][1:] for c in named(env, "krun_set_vm_config")] == [[2, 512]]
    assert [c["args"][1] for c in named(env, "krun_set_root_disk")] == ["/disk.img"]
    assert [c["args"][1] for c in named(env, "krun_set_tee_config_file")] == ["/krun-sev.json"]
    assert [c["args"][1] for c in named(env, "krun_set_env")] == [[]]
    assert not named(env, "krun_add_virtiofs2")
    assert not os.path.exists(os.path.join(bundle, "rootfs", ".krun_config.json"))


def test_dev_kvm_is_created_and_allowed(tmp_path, root, env):
    # opening the node read-write needs both the node and its device-cgroup rule (the spec denies all)
    bundle = krun_bundle(tmp_path, args=["sh", "-c", "test -c /dev/kvm && exec 3<>/dev/kvm && echo kvm-open"],
                         annotations={"run.oci.handler": "krun"})
    res = ocirt(root, env, "run", "--bundle", bundle, "k-dev")
    assert (res.returncode, res.stdout) == (0, "kvm-open\n"), res.stderr


def test_failing_start_enter_is_reported(tmp_path, root, env):
    bundle = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"})
    res = ocirt(root, dict(env, LIBKRUN_DOUBLE_FAIL="krun_start_enter:2"), "run", "--bundle", bundle, "k-fail")
    assert res.returncode == 1
    assert "krun_start_enter: No such file or directory (errno 2, libkrun.so.1)" in res.stderr
