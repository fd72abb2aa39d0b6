"""An ocirt-mkcw image handed to the krun handler reaches libkrun as a TEE boot.

Uses the krun area's libkrun TEST DOUBLE (tests/krun/libkrun_double.c, built
with gcc) and its stand-in init (tests/krun/mini_init.py), which drive
ocirt.handlers exactly as the core does.  The double records every libkrun
call; it boots no VM, so what is checked is that /disk.img and
/krun-sev.json of a real converted image are what libkrun is given, with the
VM shape from krun-sev.json.
"""
import json
import os
import subprocess
import sys

import pytest

from tests import support
from tests.mkcw.helpers import extract_layer, read_layout, run_mkcw

try:
    from tests.krun import double
except ImportError:            # the krun area's test support is not on this branch
    double = None

MINI_INIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "krun", "mini_init.py")

pytestmark = [
    pytest.mark.skipif(double is None or not os.path.exists(MINI_INIT),
                       reason="the krun handler's libkrun test double (tests/krun, branch krun) is not present"),
    pytest.mark.skipif(double is not None and not double.gcc_available(),
                       reason="gcc is needed to build the libkrun test double"),
]


@pytest.mark.parametrize("tee, variant", [("snp", 1), ("sev", 1)])
def test_disk_and_tee_config_reach_libkrun(tmp_path, tee, variant):
    support.ocirt_bin()                       # builds ocirt.linux._libc in the tree for mini_init
    libdir = double.build(str(tmp_path / "libkrun-double"))
    (tmp_path / "scratch").mkdir()
    src = support.make_rootfs(str(tmp_path / "src"), applets=["sh"])
    res = run_mkcw("-p", "pw", "-t", tee, "-c", "3", "-m", "768", "-w", "wl", "--kdf-seconds", "0.02",
                   f"dir:{src}", f"oci:{tmp_path / 'image'}", env={"TMPDIR": str(tmp_path / "scratch")})
    assert res.returncode == 0, res.stderr

    # a bundle whose rootfs is the converted image, run as podman would run it
    _, config, layers = read_layout(str(tmp_path / "image"))
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    extract_layer(layers[0], bundle / "rootfs")
    from ocirt.spec.default import default_spec
    spec = default_spec(args=config["config"]["Entrypoint"])
    spec["annotations"] = {"run.oci.handler": "krun"}
    (bundle / "config.json").write_text(json.dumps(spec))

    log = str(tmp_path / "calls.log")
    env = dict(os.environ, LIBKRUN_DOUBLE_LOG=log, OCIRT_LIBKRUN_DIR=libdir)
    run = subprocess.run([sys.executable, MINI_INIT, "--devices", "kvm,sev", str(bundle)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "TEE boot of /disk.img with /krun-sev.json is not simulated" in run.stderr
    calls = double.read_calls(log)
    named = {c["call"]: c for c in calls}
    assert {c["variant"] for c in calls} == {variant}                    # libkrun-sev.so.1
    assert named["krun_set_root_disk"]["args"][1] == "/disk.img"
    assert named["krun_set_tee_config_file"]["args"][1] == "/krun-sev.json"
    assert named["krun_set_vm_config"]["args"][1:] == [3, 768]         # from krun-sev.json
