"""--firmware-library: the registered launch measurement is the one ocirt.kbs.measure computes.

There is no libkrunfw-sev here, so the library is a TEST DOUBLE built with
gcc: it exports the three payload getters libkrun uses
(krunfw_get_kernel/initrd/qboot) returning synthetic blobs.  What is checked
is the wiring: ocirt-mkcw measures that library for the requested VM shape and
TEE, registers exactly that digest, and never an empty one.
"""
import http.server
import json
import shutil
import subprocess
import threading

import pytest

from tests.mkcw.helpers import run_mkcw
from tests.support import make_rootfs

libkrun_measure = pytest.importorskip(
    "ocirt.kbs.measure.libkrun",
    reason="ocirt.kbs.measure has no libkrun launch-digest code on this branch yet (branch kbs-verify)")
from ocirt.kbs.measure import libkrun_launch_digest  # noqa: E402

FAKE_LIBKRUNFW = r"""
#include <stddef.h>
/* TEST DOUBLE for libkrunfw-sev: payload getters with fixed synthetic bytes. */
static unsigned char firmware[64 * 1024], kernel[2 * 4096 + 77], initrd[3000];
__attribute__((constructor)) static void fill(void) {
    for (size_t i = 0; i < sizeof firmware; i++) firmware[i] = (unsigned char)(i ^ 0x5a);
    for (size_t i = 0; i < sizeof kernel; i++) kernel[i] = (unsigned char)(i * 3);
    for (size_t i = 0; i < sizeof initrd; i++) initrd[i] = (unsigned char)(i * 11 + 1);
}
char *krunfw_get_kernel(size_t *load_addr, size_t *entry_addr, size_t *size) {
    *load_addr = 0x1000000; *entry_addr = 0x1000000; *size = sizeof kernel; return (char *)kernel;
}
char *krunfw_get_initrd(size_t *size) { *size = sizeof initrd; return (char *)initrd; }
char *krunfw_get_qboot(size_t *size) { *size = sizeof firmware; return (char *)firmware; }
int krunfw_get_version(void) { return 4; }
"""


@pytest.fixture(scope="module")
def fake_libkrunfw(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the libkrunfw test double")
    d = tmp_path_factory.mktemp("libkrunfw")
    (d / "fake.c").write_text(FAKE_LIBKRUNFW)
    lib = d / "libkrunfw-sev.so.4"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(d / "fake.c")], check=True)
    return str(lib)


class _Recorder(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("tee, mode, cpus, mem", [("snp", "snp", 2, 512), ("snp", "snp", 4, 2048),
                                                  ("sev", "seves", 2, 512)])
def test_registered_measurement_is_the_computed_one(tmp_path, fake_libkrunfw, tee, mode, cpus, mem):
    handler = type("H", (_Recorder,), {"bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "scratch").mkdir()
        src = make_rootfs(str(tmp_path / "src"), applets=["sh"])
        res = run_mkcw("-u", f"http://127.0.0.1:{server.server_address[1]}", "-f", fake_libkrunfw, "-t", tee,
                       "-c", str(cpus), "-m", str(mem), "--kdf-seconds", "0.02", f"dir:{src}",
                       f"oci:{tmp_path / 'o'}", env={"TMPDIR": str(tmp_path / "scratch")})
        assert res.returncode == 0, res.stderr
    finally:
        server.shutdown()
        server.server_close()
    expected = libkrun_launch_digest(fake_libkrunfw, cpus, mem, mode=mode).hex()
    assert len(handler.bodies) == 1
    assert handler.bodies[0]["launch_measurement"] == expected
    assert len(expected) == (96 if tee == "snp" else 64)


def test_not_a_libkrunfw_is_one_line(tmp_path):
    (tmp_path / "scratch").mkdir()
    src = make_rootfs(str(tmp_path / "src"), applets=["sh"])
    res = run_mkcw("-u", "http://127.0.0.1:9", "-f", "/bin/busybox", "--kdf-seconds", "0.02", f"dir:{src}",
                   f"oci:{tmp_path / 'o'}", env={"TMPDIR": str(tmp_path / "scratch")})
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocirt-mkcw: --firmware-library: "), res.stderr
    assert not (tmp_path / "o").exists()
