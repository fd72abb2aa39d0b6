"""Guest side: disk footer, evidence providers, the unlock command on a real LUKS file."""
import json
import os
import struct
import subprocess

import pytest

from ocirt.errors import OcirtError
from ocirt.kbs import evidence, protocol, unlock
from tests.test_kbs_helpers import KbsServer, MEASUREMENT, kbs_bin, make_chain, write_disk

FOOTER = {"tee": "snp", "tee_data": "{\"gen\":\"milan\"}", "workload_id": "test", "cpus": 2, "ram_mib": 512,
          "attestation_url": "http://127.0.0.1:8000"}


def raw_disk(path, tail):
    with open(path, "wb") as f:
        f.write(b"\0" * 8192 + tail)
    return str(path)


# --- footer ------------------------------------------------------------------------

def test_footer_round_trip(tmp_path):
    disk = write_disk(str(tmp_path / "disk.img"), "pw", FOOTER)
    assert unlock.read_footer(disk) == FOOTER
    assert unlock.footer_gen(FOOTER) == "milan"
    assert unlock.footer_gen({**FOOTER, "tee_data": "{\"gen\":\"Genoa\"}"}) == "genoa"


def test_footer_in_the_buildah_byte_layout(tmp_path):
    # exactly the krun-sev.json bytes of confidential-workloads.md §3, then "KRUN", then u64 LE 132
    cfg = (b'{"tee":"snp","tee_data":"{\\"gen\\":\\"milan\\"}","workload_id":"test","cpus":2,"ram_mib":512,'
           b'"attestation_url":"http://127.0.0.1:8000"}')
    assert len(cfg) == 132
    disk = raw_disk(tmp_path / "d", cfg + b"KRUN" + struct.pack("<Q", 132))
    assert unlock.read_footer(disk)["attestation_url"] == "http://127.0.0.1:8000"


@pytest.mark.parametrize("tail,words", [
    (b"{}" + b"NURK" + struct.pack("<Q", 2), "missing 'KRUN'"),
    (b"{}" + b"KRUN" + struct.pack("<Q", 2 << 20), "out of range"),
    (b"{}" + b"KRUN" + struct.pack("<Q", 0), "out of range"),
    (b"{nope" + b"KRUN" + struct.pack("<Q", 5), "not valid JSON"),
    (b"[1]" + b"KRUN" + struct.pack("<Q", 3), "JSON object"),
    (b'{"tee":"snp"}' + b"KRUN" + struct.pack("<Q", 13), "workload_id"),
])
def test_footer_refusals(tmp_path, tail, words):
    with pytest.raises(OcirtError, match=words):
        unlock.read_footer(raw_disk(tmp_path / "d", tail))


def test_footer_of_a_missing_disk(tmp_path):
    with pytest.raises(OcirtError, match="No such file"):
        unlock.read_footer(str(tmp_path / "absent"))


# --- workload from /.krun_config.json ---------------------------------------------------

def test_workload_from_buildah_krun_config():
    cfg = {"created": "x", "architecture": "amd64", "os": "linux",
           "config": {"Env": ["PATH=/bin", "A=b=c"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "echo hi"],
                      "WorkingDir": "/srv"}}
    assert unlock.workload_process(cfg) == (["/bin/sh", "-c", "echo hi"], {"PATH": "/bin", "A": "b=c"}, "/srv")


def test_workload_from_process_shape_and_defaults():
    argv, env, cwd = unlock.workload_process({"process": {"args": ["/app"], "env": ["X=1"]}})
    assert argv == ["/app"] and env["X"] == "1" and "PATH" in env and cwd == "/"


def test_workload_without_command():
    with pytest.raises(OcirtError, match="no command"):
        unlock.workload_process({"config": {"Env": []}})


# --- evidence providers ------------------------------------------------------------------

def test_snp_get_report_code_matches_the_kernel_header(tmp_path):
    src = tmp_path / "c.c"
    src.write_text('#include <stdio.h>\n#include <sys/ioctl.h>\n#include <linux/types.h>\n#include <linux/sev-guest.h>\n'
                   'int main(void){printf("%lu\\n",(unsigned long)SNP_GET_REPORT);return 0;}\n')
    subprocess.run(["gcc", "-o", str(tmp_path / "c"), str(src)], check=True)
    expected = int(subprocess.run([str(tmp_path / "c")], capture_output=True, text=True, check=True).stdout)
    assert evidence.snp_get_report_request_code() == expected


def test_sev_guest_device_missing_is_a_clear_error(tmp_path):
    p = evidence.SevGuestProvider(device=str(tmp_path / "sev-guest"))
    with pytest.raises(OcirtError, match="sev-guest: No such file"):
        p.report(bytes(64))


def test_auto_without_any_source(monkeypatch, tmp_path):
    monkeypatch.setattr(evidence, "TSM_REPORT_DIR", str(tmp_path / "tsm"))
    monkeypatch.setattr(evidence, "SEV_GUEST_DEVICE", str(tmp_path / "sev-guest"))
    with pytest.raises(OcirtError, match="no SEV-SNP evidence source"):
        evidence.select("auto")


def test_cert_table_vcek_extraction():
    vcek = b"DER-BYTES-OF-A-VCEK"
    ark_guid = bytes(range(1, 17))  # any other entry comes first
    header_len = 3 * 24
    table = (ark_guid + struct.pack("<II", header_len, 3) + evidence.VCEK_GUID
             + struct.pack("<II", header_len + 3, len(vcek)) + bytes(24) + b"ARK" + vcek)
    assert evidence.parse_cert_table(table) == vcek
    assert evidence.parse_cert_table(bytes(24)) is None


def test_sample_provider_reports_verify_against_its_chain(tmp_path):
    from ocirt.kbs import snp
    chain = make_chain(str(tmp_path / "chain"), rsa_bits=2048)
    p = evidence.SampleProvider(chain, MEASUREMENT)
    assert (p.tee, p.gen) == ("sample", "sample")
    rd = protocol.binding_hash("nonce", "AQAB", "AQAB")
    report = snp.parse_report(p.report(rd))
    with open(os.path.join(chain, "ark.pem"), "rb") as a, open(os.path.join(chain, "ask.pem"), "rb") as b:
        roots = a.read() + b.read()
    result = snp.verify(report, p.vcek, None, "milan", expected_report_data=rd, expected_measurement=MEASUREMENT,
                        trusted_roots=roots)
    assert result.ok, result.checks
    assert json.loads(p.cert_chain())[0]["cert_type"] == "vcek"


# --- protocol shapes the libkrun client sends ----------------------------------------------

def test_auth_request_is_byte_identical_to_libkrun():
    assert protocol.auth_request("wid") == b'{"extra-params":"{\\"workload_id\\":\\"wid\\"}","tee":"snp","version":"0.0.0"}'


def test_binding_matches_the_verifier():
    from ocirt.kbs import snp
    assert protocol.b64_uint(65537) == "AQAB"
    assert protocol.binding_hash("n", "m", "AQAB") == snp.expected_report_data("n", "m", "AQAB")


def test_attest_request_shape():
    body = json.loads(protocol.attest_request("bW9k", "AQAB", "milan", bytes(range(256)) * 4 + bytes(160)))
    ev = json.loads(body["tee-evidence"])
    assert body["tee-pubkey"] == {"alg": "RSA", "k-mod": "bW9k", "k-exp": "AQAB"}
    assert ev["report"] == ev["report"].upper() and len(ev["report"]) == 2368 and ev["cert_chain"] == "[]"


# --- the unlock command against a real server and a real LUKS file ---------------------------

@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("unlock")
    chain = make_chain(str(work / "chain"), rsa_bits=2048)
    srv = KbsServer(str(work / "kbs"), "--allow-sample-evidence", chain)
    assert srv.register("wl-disk", passphrase="disk-pass-1")[0] == 200
    assert srv.register("wl-wrong", passphrase="not-the-disk-pass")[0] == 200
    yield {"srv": srv, "chain": chain, "work": work}
    srv.stop()


def run_unlock(env, disk, *extra):
    return subprocess.run([kbs_bin(), "unlock", "--disk", disk, "--evidence", "sample", "--sample-chain",
                           env["chain"], "--sample-measurement", MEASUREMENT.hex(), *extra],
                          capture_output=True, text=True, timeout=60)


def test_unlock_check_only_opens_the_luks_header(env):
    disk = write_disk(str(env["work"] / "ok.img"), "disk-pass-1",
                      {**FOOTER, "workload_id": "wl-disk", "attestation_url": env["srv"].url})
    res = run_unlock(env, disk, "--check-only")
    assert res.returncode == 0, res.stderr
    assert "opens the LUKS header" in res.stdout
    assert "disk-pass-1" not in res.stdout + res.stderr
    assert any(e["event"] == "release" and e["workload_id"] == "wl-disk" for e in env["srv"].audit())


def test_unlock_with_a_passphrase_that_does_not_fit(env):
    disk = write_disk(str(env["work"] / "wrong.img"), "disk-pass-1",
                      {**FOOTER, "workload_id": "wl-wrong", "attestation_url": env["srv"].url})
    res = run_unlock(env, disk, "--check-only")
    assert res.returncode == 1
    assert "does not open this disk" in res.stderr and "Traceback" not in res.stderr


def test_unlock_open_fails_clearly_without_device_mapper(env):
    if os.path.exists("/dev/mapper/control") and subprocess.run(
            ["dmsetup", "version"], capture_output=True).returncode == 0:
        pytest.skip("device-mapper works here: opening would really map the disk")
    disk = write_disk(str(env["work"] / "open.img"), "disk-pass-1",
                      {**FOOTER, "workload_id": "wl-disk", "attestation_url": env["srv"].url})
    res = run_unlock(env, disk)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocirt-kbs unlock: cryptsetup open ")
    assert "device-mapper" in lines[0]
    assert not os.path.exists("/dev/mapper/luksroot")


def test_unlock_refused_by_the_server_says_why(env):
    disk = write_disk(str(env["work"] / "refused.img"), "disk-pass-1",
                      {**FOOTER, "workload_id": "wl-disk", "attestation_url": env["srv"].url})
    res = subprocess.run([kbs_bin(), "unlock", "--disk", disk, "--evidence", "sample", "--sample-chain",
                          env["chain"], "--sample-measurement", "00" * 48, "--check-only"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "/attest refused (403)" in res.stderr and "measurement" in res.stderr


def test_unlock_without_a_reachable_kbs(env, tmp_path):
    disk = write_disk(str(tmp_path / "d.img"), "x", {**FOOTER, "attestation_url": "http://127.0.0.1:9"})
    res = run_unlock(env, disk, "--check-only")
    assert res.returncode == 1 and "KBS http://127.0.0.1:9" in res.stderr and "Traceback" not in res.stderr


# --- the last step: switch into the opened disk and exec its workload ------------------------

def test_switch_root_and_exec_runs_the_workload(tmp_path):
    """In a private mount namespace (nothing leaks to the host): a tmpfs stands in for the
    opened LUKS disk, holding a busybox root and buildah's /.krun_config.json."""
    from tests.support import make_rootfs, ocirt_bin
    ocirt_bin()  # builds the cffi libc binding in place
    from ocirt.linux._libc import ffi, lib
    new_root = str(tmp_path / "luksroot")
    os.mkdir(new_root)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            if lib.unshare(lib.CLONE_NEWNS) != 0:
                raise OSError(ffi.errno, "unshare")
            if lib.mount(b"none", b"/", ffi.NULL, lib.MS_REC | lib.MS_PRIVATE, ffi.NULL) != 0:
                raise OSError(ffi.errno, "make / private")
            if lib.mount(b"tmpfs", new_root.encode(), b"tmpfs", 0, ffi.NULL) != 0:
                raise OSError(ffi.errno, "tmpfs")
            make_rootfs(new_root)
            os.makedirs(new_root + "/srv")
            with open(new_root + "/.krun_config.json", "w") as f:
                json.dump({"architecture": "amd64", "os": "linux", "config": {
                    "Env": ["PATH=/bin", "GREETING=hello-from-the-disk"], "Entrypoint": ["/bin/sh", "-c"],
                    "Cmd": ["echo $GREETING; pwd; test -e /.krun_config.json && echo rooted; ls /proc/self >/dev/null && echo proc"],
                    "WorkingDir": "/srv"}}, f)
            os.dup2(write_fd, 1)
            unlock.switch_root_and_exec(new_root)
        except BaseException as e:
            os.write(2, f"child: {e!r}\n".encode())
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out.split() == ["hello-from-the-disk", "/srv", "rooted", "proc"]
    assert not os.listdir(new_root)  # the tmpfs lived only in the child's mount namespace
