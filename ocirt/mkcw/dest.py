"""DEST: an OCI layout directory, an OCI archive, or podman's image store.

The result is first staged as an OCI layout directory holding only
ciphertext; these functions move it to where the user asked.
"""
import json
import os
import tarfile

from ocirt.errors import OcirtError
from ocirt.mkcw import oci
from ocirt.mkcw.source import podman

# below this, one `podman load` of an archive on stdin beats load + tag + untag
# (three podman starts); above it, the two copies podman makes of the archive cost more
STREAM_LOAD_LIMIT = 64 << 20


def classify_dest(spec):
    for prefix, kind in (("oci:", "oci"), ("oci-archive:", "oci-archive"), ("containers-storage:", "podman")):
        if spec.startswith(prefix):
            return kind, spec[len(prefix):]
    return "podman", spec


def deliver(kind, target, layout_dir, config_digest, layer_size, scratch):
    """Move the staged layout ``layout_dir`` to DEST."""
    if kind == "oci":
        os.chmod(layout_dir, 0o755)
        os.rename(layout_dir, target)
    elif kind == "oci-archive":
        _write_archive(layout_dir, target)
    else:
        _load_into_podman(layout_dir, target, config_digest, layer_size, scratch)


def _stream_into_podman(layout_dir, name, env):
    """``podman load`` an OCI archive written to its stdin, named by its ref annotation."""
    import subprocess
    index_path = os.path.join(layout_dir, "index.json")
    with open(index_path) as f:
        index = json.load(f)
    index["manifests"][0].setdefault("annotations", {})[oci.REF_ANNOTATION] = name
    with open(index_path, "w") as f:
        json.dump(index, f, separators=(",", ":"))
    try:
        proc = subprocess.Popen(["podman", "load", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    except FileNotFoundError:
        raise OcirtError("podman not found: needed for podman image destinations") from None
    try:
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for entry in ("oci-layout", "index.json", "blobs"):
                    tar.add(os.path.join(layout_dir, entry), arcname=entry, filter=_normalise)
            proc.stdin.close()
        except BrokenPipeError:
            pass                      # podman gave up early; its stderr says why
        proc.stdin = None
        _, err = proc.communicate(timeout=600)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        lines = [l.strip() for l in err.decode(errors="replace").splitlines()
                 if l.strip() and "level=warning" not in l]
        # podman lists why each format failed; ours is the oci-archive one
        ours = [l.lstrip("* ") for l in lines if l.startswith("* oci-archive:")]
        why = (ours or lines or [f"exit {proc.returncode}"])[-1].replace("Error: ", "")
        raise OcirtError(f"podman load as {name!r}: {why}")


def _write_archive(layout_dir, dest):
    tmp = dest + ".ocirt-mkcw-tmp"
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in ("oci-layout", "index.json", "blobs"):
                tar.add(os.path.join(layout_dir, name), arcname=name,
                        filter=lambda ti: _normalise(ti))
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _normalise(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _podman_env(scratch):
    """podman's own temporary copies go to our scratch directory, so an
    interrupted load leaves nothing behind either."""
    tmp = os.path.join(scratch, "podman-tmp")
    os.makedirs(tmp, mode=0o700, exist_ok=True)
    return dict(os.environ, TMPDIR=tmp)


def _load_into_podman(layout_dir, name, config_digest, layer_size, scratch):
    env = _podman_env(scratch)
    if layer_size <= STREAM_LOAD_LIMIT:
        return _stream_into_podman(layout_dir, name, env)
    image_id = config_digest.split(":")[1]
    loaded = podman("load", "-q", "-i", layout_dir, env=env).stdout
    # podman names an image loaded from a directory after the directory's path
    temporary = [n.strip() for line in loaded.splitlines() if line.startswith("Loaded image")
                 for n in line.split(":", 1)[1].split(",") if n.strip()]
    try:
        podman("tag", image_id, name)
    except BaseException:
        podman("rmi", "-f", image_id, check=False)
        raise
    finally:
        for tmp_name in temporary:
            podman("untag", image_id, tmp_name, check=False)
