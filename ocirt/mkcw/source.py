"""SOURCE: a podman image, an OCI layout directory or archive, or a rootfs directory.

Each kind yields a directory holding the image's files (mounted read-only
from podman's store, unpacked into the private scratch directory, or the
user's directory as is), the OCI image config to keep as
``/.krun_config.json``, the content size the slop rule starts from, and an
identifier for the history entry.
"""
import json
import os
import subprocess
import time

from ocirt.errors import OcirtError
from ocirt.mkcw import oci


class Source:
    def __init__(self, rootfs, config, content_size, ident):
        self.rootfs = rootfs
        self.config = config            # dict: the OCI image config object
        self.content_size = content_size
        self.ident = ident


def _split_ref(spec):
    """``PATH[:REF]`` as containers-transports spell oci: references."""
    path, sep, ref = spec.rpartition(":")
    if sep and path and "/" not in ref and not os.path.exists(spec):
        return path, ref
    return spec, None


def classify(spec):
    """(kind, target, ref) for a SOURCE argument."""
    for prefix in ("oci:", "oci-archive:"):
        if spec.startswith(prefix):
            path, ref = _split_ref(spec[len(prefix):])
            return prefix[:-1], path, ref
    if spec.startswith("dir:") or spec.startswith("rootfs:"):
        return "rootfs", spec.split(":", 1)[1], None
    if spec.startswith("containers-storage:"):
        return "podman", spec.split(":", 1)[1], None
    if os.path.isdir(spec):
        return ("oci" if os.path.exists(os.path.join(spec, "oci-layout")) else "rootfs"), spec, None
    if os.path.isfile(spec):
        return "oci-archive", spec, None
    return "podman", spec, None


def podman(*args, check=True, text=True, timeout=600, env=None):
    try:
        res = subprocess.run(["podman", *args], capture_output=True, text=text, timeout=timeout, env=env)
    except FileNotFoundError:
        raise OcirtError("podman not found: needed for podman image sources and destinations") from None
    if check and res.returncode != 0:
        err = res.stderr.strip() if text else res.stderr.decode(errors="replace").strip()
        last = [l for l in err.splitlines() if "level=warning" not in l]
        raise OcirtError(f"podman {args[0]} {args[1] if len(args) > 1 else ''}: "
                         f"{(last or [err])[-1] if err else 'exit %d' % res.returncode}".replace("Error: ", ""))
    return res


def _dir_size(root):
    """Sum of file sizes below ``root`` (buildah's fallback when it has no stored size)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _config_from_inspect(info):
    """Rebuild the OCI image config from ``podman image inspect`` (podman prints no raw config)."""
    src = info.get("Config") or {}
    keys = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "StopSignal")
    config = {k: src[k] for k in keys if src.get(k)}
    return {"created": info.get("Created"), "architecture": info.get("Architecture") or "amd64",
            "os": info.get("Os") or "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": (info.get("RootFS") or {}).get("Layers") or []},
            "history": info.get("History") or []}


class open_source:
    """Context manager: ``with open_source(spec, scratch) as src``; undoes mounts on exit."""

    def __init__(self, spec, scratch_dir):
        self.spec = spec
        self.scratch_dir = scratch_dir
        self._unmount = None

    def __enter__(self):
        kind, target, ref = classify(self.spec)
        if kind == "rootfs":
            if not os.path.isdir(target):
                raise OcirtError(f"SOURCE {target}: no such directory")
            config = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "architecture": "amd64",
                      "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}
            return Source(os.path.abspath(target), config, _dir_size(target), os.path.abspath(target))
        if kind in ("oci", "oci-archive"):
            if not os.path.exists(target):
                raise OcirtError(f"SOURCE {target}: no such file or directory")
            layout = oci.Layout(target)
            try:
                manifest, config, _, config_digest = layout.image(ref)
                rootfs = os.path.join(self.scratch_dir, "rootfs")
                os.mkdir(rootfs, 0o755)
                oci.unpack_image(layout, manifest, rootfs)
            finally:
                layout.close()
            return Source(rootfs, config, _dir_size(rootfs), config_digest.split(":")[1])
        res = podman("image", "inspect", "--format", "json", target, check=False)
        if res.returncode != 0:
            raise OcirtError(f"SOURCE {target}: no such image in podman's store")
        info = json.loads(res.stdout)[0]
        mounted = podman("image", "mount", info["Id"]).stdout.strip()
        self._unmount = info["Id"]
        return Source(mounted, _config_from_inspect(info), int(info.get("Size") or 0), info["Id"])

    def __exit__(self, *exc):
        if self._unmount:
            podman("image", "unmount", self._unmount, check=False)
            self._unmount = None
        return False
