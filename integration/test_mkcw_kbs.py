"""ocirt-mkcw registering with the real ocirt attestation server (ocirt-kbs serve on loopback).

End to end without TEE hardware: ocirt-mkcw converts an image and registers
it (admin bearer token, launch measurement, generated passphrase); a guest
speaking the libkrun client protocol, with SOFTWARE sample evidence signed by
a test chain the server is told to trust, attests with that measurement and
receives the passphrase, which then opens the image's disk.img.
"""
import json
import os
import shutil
import subprocess

import pytest

from tests.mkcw.helpers import extract_layer, read_layout, run_mkcw
from tests.support import make_rootfs

kbs_helpers = pytest.importorskip("tests.test_kbs_helpers", reason="the ocirt-kbs test support is not present")
pytest.importorskip("aiohttp", reason="ocirt-kbs needs aiohttp")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return kbs_helpers.make_chain(str(tmp_path_factory.mktemp("chain")))


@pytest.fixture(scope="module")
def server(tmp_path_factory, chain):
    work = tmp_path_factory.mktemp("kbs")
    cache = kbs_helpers.vcek_cache_for(chain, str(work / "vcek-cache"))
    srv = kbs_helpers.KbsServer(str(work), "--amd-roots", chain, "--vcek-cache", cache,
                                "--allow-sample-evidence", chain)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tee_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(65537, 2048)


def _convert(tmp_path, server, *extra, token=kbs_helpers.ADMIN_TOKEN):
    (tmp_path / "scratch").mkdir(exist_ok=True)
    src = make_rootfs(str(tmp_path / "src"), applets=["sh"])
    env = {"TMPDIR": str(tmp_path / "scratch"), "NO_PROXY": "*"}
    if token:
        env["OCIRT_KBS_ADMIN_TOKEN"] = token
    return run_mkcw("-u", server.url, "--kdf-seconds", "0.02", *extra, f"dir:{src}", f"oci:{tmp_path / 'out'}",
                    env=env)


def test_attested_guest_gets_the_passphrase_that_opens_the_disk(tmp_path, server, chain, tee_key):
    measurement = os.urandom(48)
    res = _convert(tmp_path, server, "--launch-measurement", measurement.hex(), "-w", "mkcw-e2e")
    assert res.returncode == 0, res.stderr
    status, body, _ = server.request("GET", "/workloads",
                                     headers={"Authorization": f"Bearer {kbs_helpers.ADMIN_TOKEN}"})
    assert status == 200 and "mkcw-e2e" in body.decode()

    guest = kbs_helpers.Guest(server, tee_key, chain, "mkcw-e2e")
    passphrase = guest.flow(measurement=measurement)
    assert len(passphrase) == 64                      # generated: 32 random bytes as hex

    _, _, layers = read_layout(str(tmp_path / "out"))
    extract_layer(layers[0], tmp_path / "layer")
    disk = str(tmp_path / "layer" / "disk.img")
    opened = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", disk],
                            input=passphrase, capture_output=True)
    assert opened.returncode == 0, opened.stderr
    footer = json.loads((tmp_path / "layer" / "krun-sev.json").read_text())
    assert footer["workload_id"] == "mkcw-e2e" and footer["attestation_url"] == server.url

    # a guest whose launch measurement differs gets nothing
    other = kbs_helpers.Guest(server, tee_key, chain, "mkcw-e2e")
    assert other.auth()[0] == 200
    status, _ = other.attest(other.evidence(measurement=os.urandom(48)))
    assert status != 200


@pytest.mark.parametrize("token, status", [("wrong-token", "403"), (None, "401")])
def test_registration_needs_the_admin_token(tmp_path, server, token, status):
    res = _convert(tmp_path, server, "--launch-measurement", "ab" * 48, "-w", "mkcw-denied", token=token)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"server replied {status}" in lines[0], res.stderr
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path / "scratch") == []


def test_https_registration_with_a_private_ca(tmp_path_factory, tmp_path, chain):
    work = tmp_path_factory.mktemp("kbs-tls")
    cert, key = kbs_helpers.self_signed_tls(str(work))
    srv = kbs_helpers.KbsServer(str(work), tls=(cert, key))
    try:
        assert srv.url.startswith("https://")
        res = _convert(tmp_path, srv, "--launch-measurement", "ef" * 48, "-w", "mkcw-tls", "--attestation-ca", cert)
        assert res.returncode == 0, res.stderr
        status, body, _ = srv.request("GET", "/workloads",
                                      headers={"Authorization": f"Bearer {kbs_helpers.ADMIN_TOKEN}"})
        assert status == 200 and "mkcw-tls" in body.decode()
        # without the CA the server's certificate is not trusted: one clear line, nothing written
        shutil.rmtree(tmp_path / "out")
        res = _convert(tmp_path, srv, "--launch-measurement", "ef" * 48, "-w", "mkcw-tls2")
        assert res.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists() and os.listdir(tmp_path / "scratch") == []
    finally:
        srv.stop()
