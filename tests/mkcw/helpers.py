"""Shared helpers for the ocirt-mkcw tests: run the tool, open its output.

The decryption here is written independently of ocirt.mkcw.xts: it uses
OpenSSL's own AES-XTS one 512-byte sector at a time with the plain64 tweak
(the sector number, little-endian, counted from the payload offset), which is
what dm-crypt does with ``aes-xts-plain64``.
"""
import json
import os
import struct
import subprocess
import tarfile

from tests.support import ocirt_bin

PASSPHRASE = b"fixed passphrase"


def mkcw_bin():
    return os.path.join(os.path.dirname(ocirt_bin()), "ocirt-mkcw")


def run_mkcw(*args, env=None, timeout=120, **kw):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([mkcw_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, **kw)


def read_layout(layout):
    """(manifest, config, [layer paths]) of a single-image OCI layout directory."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)

    def blob(digest):
        return os.path.join(layout, "blobs", *digest.split(":"))
    with open(blob(index["manifests"][0]["digest"])) as f:
        manifest = json.load(f)
    with open(blob(manifest["config"]["digest"])) as f:
        config = json.load(f)
    return manifest, config, [blob(l["digest"]) for l in manifest["layers"]]


def extract_layer(layer_path, dest):
    """Unpack the output layer (our own trusted output) keeping modes; returns member infos."""
    with tarfile.open(layer_path) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
        tar.extractall(dest, filter="fully_trusted")
    return members


def volume_key(disk_img, passphrase=PASSPHRASE):
    """The volume key, as cryptsetup unlocks it from slot 0 (no device-mapper needed)."""
    res = subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode", "--key-file=-",
                          disk_img], input=passphrase, capture_output=True, check=True)
    text = res.stdout.decode()
    start = text.index("MK dump:") if "MK dump:" in text else text.index("Volume key:")
    hexpart = "".join(text[start:].split(":", 1)[1].split())
    return bytes.fromhex(hexpart[:128])


def payload_offset(disk_img):
    res = subprocess.run(["cryptsetup", "luksDump", disk_img], capture_output=True, text=True, check=True)
    for line in res.stdout.splitlines():
        if line.startswith("Payload offset:"):
            return int(line.split(":")[1]) * 512
    for line in res.stdout.splitlines():
        if "offset:" in line and "[bytes]" in line:
            return int(line.split(":")[1].split("[")[0])
    raise AssertionError("no payload offset in luksDump")


def decrypt_payload(disk_img, out_path, passphrase=PASSPHRASE):
    """Decrypt the ext4 payload of disk.img into ``out_path`` (size from the ext4 superblock)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    key = volume_key(disk_img, passphrase)
    offset = payload_offset(disk_img)
    with open(disk_img, "rb") as src, open(out_path, "wb") as out:
        src.seek(offset)
        sector = 0
        first = None
        head = b""
        while True:
            data = src.read(512)
            if len(data) < 512:
                break
            dec = Cipher(algorithms.AES(key), modes.XTS(sector.to_bytes(16, "little"))).decryptor()
            plain = dec.update(data) + dec.finalize()
            out.write(plain)
            sector += 1
            if sector <= 4:
                head += plain
                if sector == 4:
                    first = _ext4_size(head)
            if first and sector * 512 >= first:
                break
    return out_path


def _ext4_size(head):
    sb = head[1024:2048]
    assert sb[56:58] == b"\x53\xef", "decrypted payload is not ext4"
    blocks = struct.unpack_from("<I", sb, 4)[0] | (struct.unpack_from("<I", sb, 0x150)[0] << 32)
    block_size = 1024 << struct.unpack_from("<I", sb, 24)[0]
    return blocks * block_size


def dump_ext4(image, dest):
    """Copy the files out of an ext4 image with debugfs (no mount needed)."""
    os.makedirs(dest, exist_ok=True)
    subprocess.run(["debugfs", "-R", f"rdump / {dest}", image], capture_output=True, check=True)
    return dest


def inode_mode(image, path):
    """(mode, uid, gid) of ``path`` inside an ext4 image, from debugfs."""
    out = subprocess.run(["debugfs", "-R", f"stat {path}", image], capture_output=True, text=True).stdout
    mode = int(out.split("Mode:")[1].split()[0], 8)
    uid = int(out.split("User:")[1].split()[0])
    gid = int(out.split("Group:")[1].split()[0])
    return mode, uid, gid


def tree(root, dir_mask=0o7777):
    """{relative path: (kind, mode, content or link target)} for comparisons.

    debugfs ``rdump`` drops the sticky/setgid bits of directories, so copies
    made with it are compared with ``dir_mask=0o777`` (and the real inode
    modes are checked with ``inode_mode``).
    """
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", st.st_mode & dir_mask)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", st.st_mode & 0o7777, f.read())
    return out


def grep_tree(root, needle):
    """Paths under ``root`` whose bytes contain ``needle``."""
    hits = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                prev = b""
                while True:
                    block = f.read(1 << 20)
                    if not block:
                        break
                    if needle in prev + block:
                        hits.append(path)
                        break
                    prev = block[-len(needle):]
    return hits
