"""ocirt-kbs end to end through its command line only, as an operator and a guest use it.

sample-chain → serve → register → unlock --check-only on a real LUKS file
with the mkcw footer → delete-workload → unlock refused; plus the verb
routing to verify-report with the real Milan report.
"""
import os
import subprocess

import pytest

from tests.test_kbs_helpers import KbsServer, kbs_bin, write_disk

MILAN = os.path.join(os.environ.get("OCIRT_SHARED", "/work/shared"), "testdata", "snp", "virtee-sev")


def kbs(*args, env=None, timeout=120):
    return subprocess.run([kbs_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_operator_and_guest_flow(tmp_path):
    chain = str(tmp_path / "chain")
    res = kbs("sample-chain", chain, "--rsa-bits", "2048")
    assert res.returncode == 0 and "SAMPLE" in res.stdout, res.stderr
    srv = KbsServer(str(tmp_path / "kbs"), "--allow-sample-evidence", chain)
    try:
        assert "SOFTWARE sample evidence" in srv.proc.stderr.readline()
        token = tmp_path / "token"
        token.write_text("test-admin-token-0123456789\n")
        (tmp_path / "pass").write_text("luks passphrase 1")
        measurement = "ab" * 48
        res = kbs("register", "--url", srv.url, "--admin-token-file", str(token), "--workload-id", "cli-wl",
                  "--launch-measurement", measurement, "--passphrase-file", str(tmp_path / "pass"))
        assert res.returncode == 0 and "registered workload cli-wl" in res.stdout, res.stderr
        # the token from the environment works too; a wrong one is refused with the server's reason
        res = kbs("register", "--url", srv.url, "--workload-id", "cli-wl2", "--launch-measurement", measurement,
                  "--passphrase-file", str(tmp_path / "pass"), env={"OCIRT_KBS_ADMIN_TOKEN": "wrong"})
        assert res.returncode == 1 and "refused (403): admin credential rejected" in res.stderr

        disk = write_disk(str(tmp_path / "disk.img"), "luks passphrase 1",
                          {"tee": "snp", "tee_data": "{\"gen\":\"milan\"}", "workload_id": "cli-wl", "cpus": 2,
                           "ram_mib": 512, "attestation_url": srv.url})
        guest = ["unlock", "--disk", disk, "--evidence", "sample", "--sample-chain", chain,
                 "--sample-measurement", measurement, "--check-only"]
        res = kbs(*guest)
        assert res.returncode == 0, res.stderr
        assert "opens the LUKS header" in res.stdout

        res = kbs("delete-workload", "--url", srv.url, "--admin-token-file", str(token), "--workload-id", "cli-wl")
        assert res.returncode == 0, res.stderr
        res = kbs(*guest)
        assert res.returncode == 1 and "not registered" in res.stderr
        assert srv.alive()
        events = [e["event"] for e in srv.audit()]
        assert events.count("release") == 1 and "delete" in events and "register" in events
    finally:
        srv.stop()


def test_serve_refuses_bad_setup_clearly(tmp_path):
    res = kbs("serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "nodir" / "kbs.db"))
    assert res.returncode == 1 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    res = kbs("serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "kbs.db"), "--tls-cert", "/nonexistent")
    assert res.returncode == 1 and "--tls-cert and --tls-key go together" in res.stderr
    res = kbs("serve", "--listen", "nonsense")
    assert res.returncode == 1 and "HOST:PORT" in res.stderr
    res = kbs("frobnicate")
    assert res.returncode == 2 and "unknown verb" in res.stderr


@pytest.mark.skipif(not os.path.exists(os.path.join(MILAN, "report_milan.hex")),
                    reason="shared SNP test data not present (set OCIRT_SHARED)")
def test_verify_report_routing_with_the_real_milan_report():
    res = kbs("verify-report", "--report", os.path.join(MILAN, "report_milan.hex"), "--vcek",
              os.path.join(MILAN, "vcek_milan.der"), "--chain", os.path.join(MILAN, "cert_chain_milan"),
              "--product", "milan")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "7a1e5c26" in res.stdout
