"""hooks/: the confidential-workload guard hook, installed by hooks/install.sh
and run exactly as its hooks.d JSON says, by a parent process that plays the
runtime (the hook judges the runtime from its parent's command line)."""
import json
import os
import subprocess
import sys

import pytest

from tests import support

HOOKS = os.path.join(support.REPO, "hooks")
SNP = {"tee": "snp", "tee_data": "{\"gen\":\"milan\"}", "workload_id": "w", "cpus": 2, "ram_mib": 512,
       "attestation_url": ""}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("hooks")
    python = os.path.realpath(sys.executable)
    subprocess.run(["sh", os.path.join(HOOKS, "install.sh"), str(base / "hooks.d"), str(base / "libexec"), python],
                   check=True, capture_output=True)
    with open(base / "hooks.d" / "ocirt-krun-cw-guard.json") as f:
        return json.load(f), base


def make_bundle(tmp_path, tee=None, annotations=None):
    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}, "annotations": annotations or {}}))
    if tee is not None:
        (rootfs / "krun-sev.json").write_text(json.dumps(tee))
    return str(bundle)


def run_hook(installed, tmp_path, bundle, runtime="runc", annotations=None, stdin=None):
    """Run the hook from a parent process whose program name is ``runtime``."""
    hook, _ = installed
    wrapper = tmp_path / runtime
    wrapper.write_text("import subprocess, sys\n"
                       f"sys.exit(subprocess.run({hook['hook']['args']!r}, executable={hook['hook']['path']!r})"
                       ".returncode)\n")
    state = stdin if stdin is not None else json.dumps(
        {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 1, "bundle": bundle,
         "annotations": annotations or {}})
    return subprocess.run([sys.executable, "-I", str(wrapper)], input=state, capture_output=True, text=True,
                          timeout=10)


def test_hooks_d_definition(installed):
    hook, base = installed
    assert hook["version"] == "1.0.0" and hook["stages"] == ["prestart"] and hook["when"] == {"always": True}
    # an absolute path to the real interpreter, never a shell shim, run isolated
    assert hook["hook"]["path"] == os.path.realpath(sys.executable)
    with open(hook["hook"]["path"], "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert hook["hook"]["args"] == ["python3", "-I", "-S", str(base / "libexec" / "krun-cw-guard.py")]


def test_plain_image_passes_silently(installed, tmp_path):
    res = run_hook(installed, tmp_path, make_bundle(tmp_path))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_cw_image_under_runc_is_refused_with_how_to(installed, tmp_path):
    res = run_hook(installed, tmp_path, make_bundle(tmp_path, tee=SNP))
    assert res.returncode == 1
    assert "container c1: refusing to start a confidential-workload image under runc" in res.stderr
    assert "--annotation run.oci.handler=krun-sev" in res.stderr and "/dev/sev" in res.stderr


def test_annotation_does_not_count_for_runc(installed, tmp_path):
    res = run_hook(installed, tmp_path, make_bundle(tmp_path, tee=SNP), annotations={"run.oci.handler": "krun-sev"})
    assert res.returncode == 1


@pytest.mark.parametrize("handler", ["krun", "krun-sev", "krun-tdx"])
@pytest.mark.parametrize("runtime", ["ocirt", "crun"])
def test_krun_handler_runs_it(installed, tmp_path, runtime, handler):
    res = run_hook(installed, tmp_path, make_bundle(tmp_path, tee=SNP), runtime=runtime,
                   annotations={"run.oci.handler": handler})
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("runtime", ["krun", "krun-ocirt"])
def test_runtime_started_as_krun(installed, tmp_path, runtime):
    assert run_hook(installed, tmp_path, make_bundle(tmp_path, tee=SNP), runtime=runtime).returncode == 0


def test_sandbox_never_gets_the_handler(installed, tmp_path):
    res = run_hook(installed, tmp_path, make_bundle(tmp_path, tee=SNP), runtime="krun",
                   annotations={"io.kubernetes.cri.container-type": "sandbox"})
    assert res.returncode == 1


def test_tdx_image_suggests_krun_tdx(installed, tmp_path):
    res = run_hook(installed, tmp_path, make_bundle(tmp_path, tee=dict(SNP, tee="tdx")))
    assert "run.oci.handler=krun-tdx" in res.stderr


def test_planted_fifo_or_symlink_cannot_hang_or_leak(installed, tmp_path):
    bundle = make_bundle(tmp_path)
    os.mkfifo(os.path.join(bundle, "rootfs", "krun-sev.json"))
    res = run_hook(installed, tmp_path, bundle)      # would block forever reading a FIFO
    assert res.returncode == 1 and "krun-sev" in res.stderr
    secret = tmp_path / "host.json"
    secret.write_text(json.dumps({"tee": "tdx"}))
    os.unlink(os.path.join(bundle, "rootfs", "krun-sev.json"))
    os.symlink(str(secret), os.path.join(bundle, "rootfs", "krun-sev.json"))
    res = run_hook(installed, tmp_path, bundle)
    assert res.returncode == 1 and "run.oci.handler=krun-sev" in res.stderr   # the host file was not read


def test_unreadable_state_fails_closed(installed, tmp_path):
    res = run_hook(installed, tmp_path, "", stdin="not json")
    assert res.returncode == 1
    assert res.stderr.startswith("krun-cw-guard: cannot read the container state or its config.json")
