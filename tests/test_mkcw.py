"""ocirt-mkcw without podman: rootfs / OCI layout sources, OCI layout / archive outputs.

Everything is checked against real tools: cryptsetup reads the header and
unlocks the key slot, OpenSSL's XTS decrypts the payload, e2fsck checks the
filesystem, debugfs copies its files out for comparison.
"""
import gzip
import hashlib
import http.server
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time

import pytest

from ocirt.errors import OcirtError
from ocirt.mkcw import disk, entrypoint, luks, oci, workload
from ocirt.mkcw.xts import SectorCipher
from tests.mkcw.helpers import (PASSPHRASE, decrypt_payload, dump_ext4, extract_layer, grep_tree,
                                inode_mode, read_layout, run_mkcw, tree, volume_key)
from tests.support import make_rootfs

FAST_KDF = ["--kdf-seconds", "0.02"]
MARKER = b"ocirt-plaintext-marker-7f3c9a"


@pytest.fixture
def tmp(tmp_path):
    (tmp_path / "scratch").mkdir()
    return tmp_path


def _env(tmp):
    return {"TMPDIR": str(tmp / "scratch")}


def _source_rootfs(tmp):
    root = make_rootfs(str(tmp / "src"), applets=["sh", "echo", "cat"])
    with open(os.path.join(root, "etc", "secret.txt"), "wb") as f:
        f.write(b"top secret: " + MARKER + b"\n")
    os.chmod(os.path.join(root, "etc", "secret.txt"), 0o640)
    os.chown(os.path.join(root, "etc", "secret.txt"), 1000, 1000)
    os.makedirs(os.path.join(root, "opt", "deep", "dir"))
    with open(os.path.join(root, "opt", "deep", "dir", "blob.bin"), "wb") as f:
        f.write(os.urandom(300000))
    return root


def _convert_rootfs(tmp, *extra, dest_name="out"):
    src = _source_rootfs(tmp)
    dest = str(tmp / dest_name)
    res = run_mkcw("-p", PASSPHRASE.decode(), "-w", "test", *FAST_KDF, *extra, f"dir:{src}", f"oci:{dest}",
                   env=_env(tmp))
    assert res.returncode == 0, res.stderr
    return src, dest


# -- pieces ------------------------------------------------------------------------

def test_entrypoint_refuses_and_exits_1(tmp_path):
    path = tmp_path / "entrypoint"
    path.write_bytes(entrypoint.build())
    path.chmod(0o755)
    res = subprocess.run([str(path)], capture_output=True)
    assert res.returncode == 1
    assert res.stdout == b""
    assert res.stderr == b"This image is designed to be run as a confidential workload using libkrun.\n"
    assert len(path.read_bytes()) < 300


def test_xts_matches_openssl_per_sector():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    key = os.urandom(64)
    data = os.urandom(512 * 70)
    out = SectorCipher(key).encrypt(data, 4095)
    for i in (0, 1, 33, 69):
        enc = Cipher(algorithms.AES(key), modes.XTS((4095 + i).to_bytes(16, "little"))).encryptor()
        assert out[i * 512:(i + 1) * 512] == enc.update(data[i * 512:(i + 1) * 512]) + enc.finalize()
    assert SectorCipher(key).decrypt(out, 4095) == data
    # sector numbers past 2^32 keep all 64 bits of the plain64 IV
    big = 1 << 33
    enc = Cipher(algorithms.AES(key), modes.XTS(big.to_bytes(16, "little"))).encryptor()
    assert SectorCipher(key).encrypt(data[:512], big) == enc.update(data[:512]) + enc.finalize()


def _luks_dump(img):
    dump = subprocess.run(["cryptsetup", "luksDump", str(img)], capture_output=True, text=True, check=True).stdout
    fields = dict(l.split(":", 1) for l in dump.splitlines() if ":" in l and not l.startswith("\t"))
    return dump, {k.strip(): v.strip() for k, v in fields.items()}


def _format(tmp_path, name, key, iterations, luks_version):
    """A header scratch file formatted by ``luks.Formatting`` (cryptsetup luksFormat); returns (path, header)."""
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(luks.header_scratch_size(luks_version))
    offset = luks.Formatting(str(path), PASSPHRASE, key, iterations, luks_version).wait()
    assert offset == luks.expected_payload_offset(luks_version)
    return path, luks.read_header(str(path), offset)


def test_luks1_header_is_cryptsetups_with_buildah_parameters(tmp_path):
    """The LUKS1 header cryptsetup writes for us: luksy's geometry, our iteration count, our volume key."""
    key = os.urandom(64)
    path, header = _format(tmp_path, "luks1.img", key, 1000, 1)
    assert len(header) == 4040 * 512 and header[:6] == b"LUKS\xba\xbe"
    dump, fields = _luks_dump(path)
    assert fields["Version"] == "1" and fields["Payload offset"] == "4040" and fields["MK bits"] == "512"
    assert (fields["Cipher name"], fields["Cipher mode"], fields["Hash spec"]) == ("aes", "xts-plain64", "sha256")
    slots = dump.split("Key Slot ")[1:]
    assert slots[0].startswith("0: ENABLED") and all(f"{i}: DISABLED" in slots[i] for i in range(1, 8))
    assert int(slots[0].split("Iterations:")[1].split()[0]) == 1000        # forced: no cryptsetup benchmark
    assert int(slots[0].split("Key material offset:")[1].split()[0]) == 8
    assert int(slots[0].split("AF stripes:")[1].split()[0]) == 4000
    ok = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", str(path)], input=PASSPHRASE,
                        capture_output=True)
    assert ok.returncode == 0, ok.stderr
    assert subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", str(path)], input=b"wrong",
                          capture_output=True).returncode != 0
    assert volume_key(str(path)) == key             # the key we encrypt the payload with, handed over by pipe


def test_luks2_header_is_cryptsetups_and_cancel_kills_it(tmp_path):
    key = os.urandom(64)
    _, header = _format(tmp_path, "luks2.img", key, 1000, 2)
    assert len(header) == luks.expected_payload_offset(2) and header[:6] == b"LUKS\xba\xbe"
    img = tmp_path / "copy.img"
    img.write_bytes(header + bytes(1 << 20))
    assert volume_key(str(img)) == key
    # a slow key slot: cancel() stops cryptsetup, nothing is left running
    slow = tmp_path / "slow.img"
    with open(slow, "wb") as f:
        f.truncate(luks.header_scratch_size(1))
    formatting = luks.Formatting(str(slow), PASSPHRASE, key, luks.calibrate_iterations(30), 1)
    time.sleep(0.2)
    assert not formatting.done()
    formatting.cancel()
    assert formatting.proc.poll() is not None and formatting.done()


def test_luksformat_runs_before_anyone_waits_and_takes_long_passphrases(tmp_path):
    """cryptsetup gets key and passphrase at once, so the derivation runs in the background from the start."""
    path = tmp_path / "bg.img"
    with open(path, "wb") as f:
        f.truncate(luks.header_scratch_size(1))
    formatting = luks.Formatting(str(path), PASSPHRASE, os.urandom(64), 1000, 1)
    deadline = time.monotonic() + 30
    while not formatting.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert formatting.done()            # finished without wait() handing anything over
    assert formatting.wait() == 4040 * 512
    # a passphrase longer than a pipe buffer (fed by a thread), checked in full
    long_pass = os.urandom(300 << 10)
    path = tmp_path / "long.img"
    with open(path, "wb") as f:
        f.truncate(luks.header_scratch_size(1))
    assert luks.Formatting(str(path), long_pass, os.urandom(64), 1000, 1).wait() == 4040 * 512
    for pw, ok in ((long_pass, True), (long_pass[:-1], False)):
        res = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", str(path)], input=pw,
                             capture_output=True)
        assert (res.returncode == 0) == ok, res.stderr


def test_mkfs_runs_without_forcing_the_plaintext_to_disk():
    """mkfs/debugfs start under a thread-local seccomp filter that makes fsync & co. no-ops."""
    res = disk.run_unsynced(["sh", "-c", "grep ^Seccomp: /proc/self/status; cat"], input="through stdin")
    assert res.returncode == 0 and res.stdout == "Seccomp:\t2\nthrough stdin"
    # only that child is filtered: not this process, not its other children
    assert "Seccomp:\t0" in open("/proc/thread-self/status").read()
    assert subprocess.run(["grep", "^Seccomp:", "/proc/self/status"], capture_output=True,
                          text=True).stdout == "Seccomp:\t0\n"
    with pytest.raises(FileNotFoundError):
        disk.run_unsynced(["/nonexistent/mkfs"])


def test_layer_writer_fills_the_hole_mid_stream_or_at_the_end(tmp_path):
    """The LUKS header's hole is filled while the payload is still being written, or in finish()."""
    head, hole, parts = os.urandom(1000), os.urandom(4040 * 512), [os.urandom(700000) for _ in range(12)]
    for fill_after in (0, 5, 12, None):
        path = str(tmp_path / f"layer-{fill_after}")
        writer = oci.LayerWriter(path, depth=2)
        writer.write(head)
        writer.hole(len(hole))
        for i, part in enumerate(parts):
            if i == fill_after:
                writer.fill_hole(hole)
            writer.write(part)
        if fill_after == 12:
            writer.fill_hole(hole)
        writer.finish(hole if fill_after is None else None)
        expected = head + hole + b"".join(parts)
        assert open(path, "rb").read() == expected
        assert writer.digest == "sha256:" + hashlib.sha256(expected).hexdigest() and writer.size == len(expected)
    writer = oci.LayerWriter(str(tmp_path / "unfilled"))
    writer.hole(10)
    with pytest.raises(ValueError):
        writer.fill_hole(b"short")
    with pytest.raises(ValueError):
        writer.finish()
    writer.abort()


def test_slop_rule_matches_buildah_figures():
    # confidential-workloads.md §5
    assert disk.image_size(1986432, "25%") == 10 << 20
    assert disk.image_size(218952035, "25%") == 273690624
    assert disk.image_size(218952035, "") == 273690624
    assert disk.image_size(100 << 20, "10%+1MB") == (110 << 20) + (1 << 20)
    assert disk.image_size(100 << 20, "0%+512k") == (100 << 20) + (512 << 10)
    for bad in ("abc", "200%", "%", "12XB", "5%+"):
        with pytest.raises(OcirtError, match="--slop"):
            disk.image_size(1, bad)


def test_footer_and_padding_worked_sizes():
    payload = workload.workload_json("snp", "test", 2, 512, "http://127.0.0.1:8000")
    assert len(payload) == 132
    foot = disk.footer(payload)
    assert len(foot) == 144
    # busybox example of confidential-workloads.md §4
    assert disk.padding(2068480, 10485760, 144) == 3952
    assert disk.padding(2068480, 273690624, 144) == 3952
    assert disk.read_footer(b"junk" + foot) == payload
    with pytest.raises(OcirtError):
        disk.read_footer(foot[:-1] + b"\x01")


def test_workload_json_bytes_match_buildah():
    # confidential-workloads.md §3, byte for byte
    assert workload.workload_json("snp", "test", 2, 512, "http://127.0.0.1:8000") == (
        b'{"tee":"snp","tee_data":"{\\"gen\\":\\"milan\\"}","workload_id":"test","cpus":2,"ram_mib":512,'
        b'"attestation_url":"http://127.0.0.1:8000"}')
    assert workload.workload_json("sev", "test", 2, 512, "http://127.0.0.1:8000") == (
        b'{"tee":"sev","tee_data":"{\\"vendor_chain\\":\\"\\",\\"attestation_server_pubkey\\":\\"\\"}",'
        b'"workload_id":"test","cpus":2,"ram_mib":512,"attestation_url":"http://127.0.0.1:8000"}')
    assert len(workload.workload_json("snp", "test", 2, 512, "")) == 111
    assert workload.tee_config("snp") == '{"flags":{"bits":15},"minfw":{"major":0,"minor":0}}'
    assert workload.tee_config("sev") == '{"flags":{"bits":63},"minfw":{"major":0,"minor":0}}'


def _layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _ti(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def test_layer_symlinks_cannot_redirect_writes(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = _layer([_ti("escape", tarfile.SYMTYPE, link=str(outside)),
                   _ti("escape/pwned", data=b"x"),
                   _ti("rel", tarfile.SYMTYPE, link="../outside"),
                   _ti("rel/pwned2", data=b"y")])
    oci.apply_layer(str(root), io.BytesIO(evil))
    assert os.listdir(outside) == []
    # the later entries replaced the symlinks with real directories inside the root
    assert (root / "escape" / "pwned").read_bytes() == b"x"
    assert not (root / "escape").is_symlink()
    with pytest.raises(OcirtError, match="escapes the root"):
        oci.apply_layer(str(root), io.BytesIO(_layer([_ti("../up", data=b"z")])))
    assert not (tmp_path / "up").exists()
    with pytest.raises(OcirtError, match="bad target"):
        oci.apply_layer(str(root), io.BytesIO(_layer([_ti("hl", tarfile.LNKTYPE, link="../outside/x")])))


def test_layer_whiteouts_and_gzip(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    base = _layer([_ti("a", tarfile.DIRTYPE, mode=0o755), _ti("a/one", data=b"1"), _ti("a/two", data=b"2"),
                   _ti("b", tarfile.DIRTYPE, mode=0o755), _ti("b/keep", data=b"k"), _ti("c", data=b"c")])
    oci.apply_layer(str(root), io.BytesIO(base))
    top = gzip.compress(_layer([_ti("a/.wh..wh..opq"), _ti("a/new", data=b"n"), _ti(".wh.c"),
                                _ti("b/hard", tarfile.LNKTYPE, link="b/keep")]))
    oci.apply_layer(str(root), io.BytesIO(top))
    assert sorted(os.listdir(root / "a")) == ["new"]
    assert not (root / "c").exists()
    assert os.stat(root / "b" / "hard").st_ino == os.stat(root / "b" / "keep").st_ino


# -- whole conversions ---------------------------------------------------------------

def test_rootfs_to_oci_layout_is_a_buildah_compatible_image(tmp):
    src, dest = _convert_rootfs(tmp)
    manifest, config, layers = read_layout(dest)
    assert len(layers) == 1
    assert config["config"] == {"Entrypoint": ["/entrypoint"]}
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    assert hashlib.sha256(open(layers[0], "rb").read()).hexdigest() == manifest["layers"][0]["digest"][7:]
    assert "for use with \"snp\"" in config["history"][0]["created_by"]

    out = tmp / "layer"
    members = extract_layer(layers[0], out)
    assert sorted(members) == ["disk.img", "entrypoint", "krun-sev.json", "tmp"]
    assert members["disk.img"].mode == 0o600 and members["krun-sev.json"].mode == 0o600
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert members["entrypoint"].mode == 0o755
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    krun = (out / "krun-sev.json").read_bytes()
    assert json.loads(krun) == {"tee": "snp", "tee_data": '{"gen":"milan"}', "workload_id": "test", "cpus": 2,
                                "ram_mib": 512, "attestation_url": ""}

    img = str(out / "disk.img")
    assert os.path.getsize(img) % 4096 == 0
    with open(img, "rb") as f:
        f.seek(-4096, os.SEEK_END)
        assert disk.read_footer(f.read()) == krun

    dump = subprocess.run(["cryptsetup", "luksDump", img], capture_output=True, text=True, check=True).stdout
    fields = dict(l.split(":", 1) for l in dump.splitlines() if ":" in l and not l.startswith("\t"))
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["Version"] == "1"
    assert fields["Cipher name"] == "aes" and fields["Cipher mode"] == "xts-plain64"
    assert fields["Hash spec"] == "sha256" and fields["MK bits"] == "512"
    assert fields["Payload offset"] == "4040"
    assert "Key Slot 0: ENABLED" in dump and "Key Slot 1: DISABLED" in dump
    assert "AF stripes:            \t4000" in dump or "4000" in dump.split("AF stripes:")[1].split()[0]

    ok = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", img],
                        input=PASSPHRASE, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", img],
                           input=b"wrong", capture_output=True)
    assert wrong.returncode != 0

    plain = decrypt_payload(img, str(tmp / "plain.ext4"))
    assert os.path.getsize(plain) == 10 << 20           # minimum size (slop rule)
    fsck = subprocess.run(["e2fsck", "-fn", plain], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    files = dump_ext4(plain, str(tmp / "files"))
    got = tree(files, dir_mask=0o777)
    kc = got.pop(".krun_config.json")
    assert kc[1] == 0o600 and json.loads(kc[2])["os"] == "linux"
    assert inode_mode(plain, "/.krun_config.json") == (0o600, 0, 0)
    got.pop("lost+found")
    assert got == tree(src, dir_mask=0o777)
    assert inode_mode(plain, "/tmp") == (0o1777, 0, 0)
    assert inode_mode(plain, "/etc/secret.txt") == (0o640, 1000, 1000)
    assert not grep_tree(dest, MARKER)
    assert os.listdir(tmp / "scratch") == []


def test_default_key_derivation_costs_about_a_second(tmp):
    """The key slot's PBKDF2 count is calibrated to ~1 s here, as luksy does."""
    src = _source_rootfs(tmp)
    res = run_mkcw("-p", "x", f"dir:{src}", f"oci:{tmp / 'o'}", env=_env(tmp))
    assert res.returncode == 0, res.stderr
    _, _, layers = read_layout(str(tmp / "o"))
    extract_layer(layers[0], tmp / "l")
    dump = subprocess.run(["cryptsetup", "luksDump", str(tmp / "l" / "disk.img")], capture_output=True,
                          text=True, check=True).stdout
    iterations = int(dump.split("Iterations:")[1].split()[0])
    start = time.thread_time()          # CPU time: the box is shared, wall time is not the cost
    hashlib.pbkdf2_hmac("sha256", b"x", b"s" * 32, iterations, 64)
    elapsed = time.thread_time() - start
    assert 0.5 < elapsed < 2.0, (iterations, elapsed)


def test_luks2_option(tmp):
    src, dest = _convert_rootfs(tmp, "--luks-version", "2", "-t", "sev")
    _, _, layers = read_layout(dest)
    extract_layer(layers[0], tmp / "l")
    img = str(tmp / "l" / "disk.img")
    dump = subprocess.run(["cryptsetup", "luksDump", img], capture_output=True, text=True, check=True).stdout
    assert "Version:       \t2" in dump and "aes-xts-plain64" in dump and "pbkdf2" in dump
    plain = decrypt_payload(img, str(tmp / "plain.ext4"))
    assert subprocess.run(["e2fsck", "-fn", plain], capture_output=True).returncode == 0
    assert json.loads((tmp / "l" / "krun-sev.json").read_bytes())["tee"] == "sev"


def _write_oci_layout(path, rootfs_layers, cfg):
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}
    layers = [dict(put(gzip.compress(l)), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
              for l in rootfs_layers]
    config = dict(put(json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": oci.MT_MANIFEST, "config": config,
                           "layers": layers}).encode()
    mdesc = dict(put(manifest), mediaType=oci.MT_MANIFEST, annotations={oci.REF_ANNOTATION: "v1"})
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [mdesc]}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')


def test_oci_archive_source_to_oci_archive_dest(tmp):
    layout = str(tmp / "srclayout")
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": []}}
    _write_oci_layout(layout, [_layer([_ti("etc", tarfile.DIRTYPE, mode=0o755),
                                       _ti("etc/secret", data=MARKER, mode=0o600),
                                       _ti("etc/gone", data=b"old")]),
                               _layer([_ti("etc/.wh.gone"), _ti("hello", data=b"hi\n", mode=0o755)])], cfg)
    archive = str(tmp / "src.tar")
    with tarfile.open(archive, "w") as tar:
        for name in os.listdir(layout):
            tar.add(os.path.join(layout, name), arcname=name)
    dest = str(tmp / "out.tar")
    res = run_mkcw("-p", PASSPHRASE.decode(), *FAST_KDF, f"oci-archive:{archive}:v1", f"oci-archive:{dest}",
                   env=_env(tmp))
    assert res.returncode == 0, res.stderr
    outdir = tmp / "outlayout"
    with tarfile.open(dest) as tar:
        tar.extractall(outdir, filter="data")
    _, _, layers = read_layout(str(outdir))
    extract_layer(layers[0], tmp / "l")
    plain = decrypt_payload(str(tmp / "l" / "disk.img"), str(tmp / "plain.ext4"))
    files = tree(dump_ext4(plain, str(tmp / "files")))
    assert files["etc/secret"] == ("file", 0o600, MARKER)
    assert files["hello"] == ("file", 0o755, b"hi\n")
    assert "etc/gone" not in files
    assert json.loads(files[".krun_config.json"][2])["config"]["Cmd"] == ["/bin/sh"]
    assert not grep_tree(str(tmp / "outlayout"), MARKER) and MARKER not in open(dest, "rb").read()
    assert os.listdir(tmp / "scratch") == []


def test_add_file_lands_next_to_the_disk(tmp):
    extra = tmp / "note.txt"
    extra.write_text("public note\n")
    src, dest = _convert_rootfs(tmp, "--add-file", f"{extra}:/etc/notes/note.txt")
    _, _, layers = read_layout(dest)
    members = extract_layer(layers[0], tmp / "l")
    assert members["etc/notes/note.txt"].mode == 0o644
    assert (tmp / "l" / "etc" / "notes" / "note.txt").read_text() == "public note\n"


# -- errors: one line, nothing left behind -------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["SRC", "oci:DEST"], "neither --attestation-url nor --passphrase"),
    (["-p", "x", "-t", "tdz", "SRC", "oci:DEST"], "--type: 'tdz'"),
    (["-p", "x", "-s", "lots", "SRC", "oci:DEST"], "--slop: 'lots'"),
    (["-p", "x", "-c", "0", "SRC", "oci:DEST"], "--cpus"),
    (["-p", "x", "-w", "a/b", "SRC", "oci:DEST"], "--workload-id"),
    (["-p", "x", "dir:/nonexistent/src", "oci:DEST"], "SOURCE /nonexistent/src: no such directory"),
    (["-p", "x", "oci:/nonexistent/layout", "oci:DEST"], "SOURCE /nonexistent/layout"),
    (["-u", "http://127.0.0.1:9", "SRC", "oci:DEST"], "--firmware-library PATH or --launch-measurement"),
    (["-u", "http://example.com", "--launch-measurement", "00" * 48, "SRC", "oci:DEST"], "clear text"),
    (["-u", "http://127.0.0.1:9", "--launch-measurement", "abc", "SRC", "oci:DEST"], "96 hex digits"),
    (["-u", "http://127.0.0.1:9", "-f", "/nonexistent/libkrunfw-sev.so", "SRC", "oci:DEST"],
     "--firmware-library"),
    (["-p", "x", "--add-file", "/nonexistent", "SRC", "oci:DEST"], "--add-file: /nonexistent"),
])
def test_bad_input_is_one_clear_line(tmp, args, message):
    src = make_rootfs(str(tmp / "src"), applets=["sh"])
    dest = str(tmp / "dest")
    args = [a.replace("SRC", f"dir:{src}").replace("DEST", dest) for a in args]
    res = run_mkcw(*FAST_KDF, *args, env=_env(tmp))
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not os.path.exists(dest)
    assert os.listdir(tmp / "scratch") == []
    assert [n for n in os.listdir(tmp) if n.startswith(".ocirt-mkcw")] == []


def test_help_documents_every_option():
    res = run_mkcw("--help")
    assert res.returncode == 0
    for opt in ("--type", "--attestation-url", "--passphrase", "--passphrase-file", "--cpus", "--memory",
                "--workload-id", "--slop", "--firmware-library", "--add-file", "--launch-measurement",
                "--attestation-token", "--attestation-token-file", "--attestation-ca", "--insecure-http",
                "--luks-version", "--kdf-seconds"):
        assert opt in res.stdout


# -- registration -------------------------------------------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    requests = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests.append((self.path, dict(self.headers), body))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def kbs():
    handler = type("Handler", (_Recorder,), {"requests": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_registration_request(tmp, kbs):
    handler, url = kbs
    src = _source_rootfs(tmp)
    measurement = "ab" * 48
    res = run_mkcw("-u", url + "/base", "--launch-measurement", measurement.upper(), "-w", "wid-1",
                   "--attestation-token-file", "/dev/stdin", *FAST_KDF, f"dir:{src}", f"oci:{tmp / 'o'}",
                   env=dict(_env(tmp), http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
                            NO_PROXY="", no_proxy=""),       # loopback never goes through a proxy
                   input="s3cret-token\n")
    assert res.returncode == 0, res.stderr
    assert len(handler.requests) == 1
    path, headers, body = handler.requests[0]
    assert path == "/base/kbs/v0/register_workload"
    assert headers["Authorization"] == "Bearer s3cret-token"
    assert headers["Content-Type"] == "application/json"
    reg = json.loads(body)
    assert list(reg) == ["workload_id", "launch_measurement", "passphrase", "tee_config"]
    assert reg["workload_id"] == "wid-1" and reg["launch_measurement"] == measurement
    assert reg["tee_config"] == '{"flags":{"bits":15},"minfw":{"major":0,"minor":0}}'
    assert len(reg["passphrase"]) == 64 and int(reg["passphrase"], 16) >= 0   # generated: 32 random bytes
    # the registered passphrase opens the disk; the image itself holds no copy of it
    _, _, layers = read_layout(str(tmp / "o"))
    extract_layer(layers[0], tmp / "l")
    img = str(tmp / "l" / "disk.img")
    ok = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", img],
                        input=reg["passphrase"].encode(), capture_output=True)
    assert ok.returncode == 0
    assert not grep_tree(str(tmp / "o"), reg["passphrase"].encode())
    assert json.loads((tmp / "l" / "krun-sev.json").read_bytes())["attestation_url"] == url + "/base"


def test_registration_env_token_and_server_error(tmp, kbs):
    handler, url = kbs
    handler.status = 403
    src = _source_rootfs(tmp)
    res = run_mkcw("-u", url, "--launch-measurement", "cd" * 48, "-p", "pw", *FAST_KDF, f"dir:{src}",
                   f"oci:{tmp / 'o'}", env=dict(_env(tmp), OCIRT_KBS_ADMIN_TOKEN="envtok", NO_PROXY="*"))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"ocirt-mkcw: registering workload at "
                                               f"{url}/kbs/v0/register_workload: server replied 403 Forbidden"]
    assert handler.requests[0][1]["Authorization"] == "Bearer envtok"
    assert json.loads(handler.requests[0][2])["passphrase"] == "pw"
    assert not os.path.exists(tmp / "o") and os.listdir(tmp / "scratch") == []


def test_unreachable_server_leaves_nothing(tmp):
    src = _source_rootfs(tmp)
    res = run_mkcw("-u", "http://127.0.0.1:9", "--launch-measurement", "cd" * 48, *FAST_KDF, f"dir:{src}",
                   f"oci:{tmp / 'o'}", env=dict(_env(tmp), NO_PROXY="*"))
    assert res.returncode == 1
    assert "registering workload" in res.stderr and "refused" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp / "o") and os.listdir(tmp / "scratch") == []


# -- signals -------------------------------------------------------------------------------

def _start_and_wait_for_mkfs(tmp, src):
    """Start a conversion and return once mkfs is writing the plaintext ext4."""
    from tests.mkcw.helpers import mkcw_bin
    proc = subprocess.Popen([mkcw_bin(), "-p", "x", "--kdf-seconds", "2", f"dir:{src}", f"oci:{tmp / 'o'}"],
                            env=dict(os.environ, OCIRT_MKCW_TIMES="1", **_env(tmp)), stderr=subprocess.PIPE,
                            text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.endswith(" making ext4\n"):
            break
    assert lines and lines[-1].endswith(" making ext4\n"), lines
    time.sleep(0.05)
    return proc


def _big_source(tmp):
    src = _source_rootfs(tmp)
    with open(os.path.join(src, "big.bin"), "wb") as f:
        f.write(os.urandom(48 << 20))
    with open(os.path.join(src, "zz-marker.txt"), "wb") as f:
        f.write(MARKER * 1000)
    return src


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_conversion_cleans_up(tmp, sig):
    proc = _start_and_wait_for_mkfs(tmp, _big_source(tmp))
    proc.send_signal(sig)
    err = proc.stderr.read()
    proc.wait(30)
    assert proc.returncode == 128 + sig, err
    assert "interrupted" in err
    assert os.listdir(tmp / "scratch") == []
    assert not os.path.exists(tmp / "o")
    assert [n for n in os.listdir(tmp) if n.startswith(".ocirt-mkcw")] == []
    # no cryptsetup or mkfs child left running (their command lines name the scratch directory)
    scratch = str(tmp / "scratch").encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if scratch in f.read():
                    left.append(pid)
        except OSError:
            pass
    assert left == []


def test_quiet_without_a_terminal_and_a_bar_on_one(tmp):
    src = _source_rootfs(tmp)
    res = run_mkcw("--passphrase-file", "-", *FAST_KDF, f"dir:{src}", f"oci:{tmp / 'quiet'}", env=_env(tmp),
                   input="from-stdin\n")
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.startswith("sha256:")               # the manifest digest, for scripts
    _, _, layers = read_layout(str(tmp / "quiet"))
    extract_layer(layers[0], tmp / "ql")
    ok = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file=-", str(tmp / "ql" / "disk.img")],
                        input=b"from-stdin", capture_output=True)
    assert ok.returncode == 0                              # the newline is not part of the passphrase

    import pty
    from tests.mkcw.helpers import mkcw_bin
    master, slave = pty.openpty()
    proc = subprocess.Popen([mkcw_bin(), "-p", "x", *FAST_KDF, f"dir:{src}", f"oci:{tmp / 'tty'}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=dict(os.environ, **_env(tmp)))
    os.close(slave)
    seen = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    os.close(master)
    assert proc.wait(60) == 0
    proc.stdout.close()
    assert b"encrypting" in seen and b"[" in seen and b"100.0%" in seen


def test_tampered_oci_layer_is_refused(tmp):
    layout = str(tmp / "srclayout")
    _write_oci_layout(layout, [_layer([_ti("hello", data=b"hi\n")])],
                      {"architecture": "amd64", "os": "linux", "config": {}})
    blobs = os.path.join(layout, "blobs", "sha256")
    index = json.load(open(os.path.join(layout, "index.json")))
    manifest = json.load(open(os.path.join(blobs, index["manifests"][0]["digest"][7:])))
    layer_path = os.path.join(blobs, manifest["layers"][0]["digest"][7:])
    with open(layer_path, "wb") as f:
        f.write(gzip.compress(_layer([_ti("hello", data=b"evil\n")])))
    res = run_mkcw("-p", "x", *FAST_KDF, f"oci:{layout}", f"oci:{tmp / 'o'}", env=_env(tmp))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"ocirt-mkcw: {layout}: layer 0: content does not match its digest {manifest['layers'][0]['digest']}"]
    assert os.listdir(tmp / "scratch") == [] and not os.path.exists(tmp / "o")


def test_unwritable_places_are_one_line(tmp):
    src = _source_rootfs(tmp)
    res = run_mkcw("-p", "x", *FAST_KDF, f"dir:{src}", f"oci:{tmp / 'o'}", env={"TMPDIR": "/nonexistent/tmp"})
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "ocirt-mkcw: cannot create a scratch directory in /nonexistent/tmp: No such file or directory"]
    res = run_mkcw("-p", "x", *FAST_KDF, f"dir:{src}", "oci:/proc/o", env=_env(tmp))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert os.listdir(tmp / "scratch") == []


def test_sigkill_leaves_no_plaintext(tmp):
    """No handler survives SIGKILL: the plaintext ext4 has no name, so the kernel frees it anyway."""
    proc = _start_and_wait_for_mkfs(tmp, _big_source(tmp))
    proc.kill()
    proc.wait(30)
    proc.stderr.close()
    time.sleep(0.2)           # mkfs/cryptsetup die with their writes once their last fd closes
    leftovers = [os.path.join(d, f) for d, _, fs in os.walk(tmp / "scratch") for f in fs]
    assert leftovers == []    # empty directories only: nothing to read, plaintext or not
    assert not grep_tree(str(tmp / "scratch"), MARKER)


def test_tdx_defaults_and_limits(tmp):
    src = make_rootfs(str(tmp / "src"), applets=["sh"])
    res = run_mkcw("-p", "x", "-t", "TDX", *FAST_KDF, f"dir:{src}", f"oci:{tmp / 'o'}", env=_env(tmp))
    assert res.returncode == 0, res.stderr
    _, _, layers = read_layout(str(tmp / "o"))
    extract_layer(layers[0], tmp / "l")
    doc = json.loads((tmp / "l" / "krun-sev.json").read_bytes())
    assert (doc["tee"], doc["tee_data"], doc["cpus"], doc["ram_mib"]) == ("tdx", "", 1, 512)
    res = run_mkcw("-p", "x", "-t", "tdx", "-c", "2", *FAST_KDF, f"dir:{src}", f"oci:{tmp / 'o2'}", env=_env(tmp))
    assert res.returncode == 1
    assert res.stderr.strip() == ("ocirt-mkcw: --type tdx: libkrun TDX guests take at most 1 vCPU and 3072 MiB "
                                  "(got --cpus 2 --memory 512)")


def test_usage_errors_are_one_line():
    for args, words in ((["-c", "abc", "a", "b"], "argument -c/--cpus: 'abc' is not an integer"),
                        ([], "the following arguments are required: SOURCE, DEST"),
                        (["--bogus", "a", "b"], "unrecognized arguments: --bogus")):
        res = run_mkcw(*args)
        assert res.returncode == 2
        assert res.stderr.strip().splitlines() == [f"ocirt-mkcw: {words} (see --help)"]
