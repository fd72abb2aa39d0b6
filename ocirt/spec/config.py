"""Loading a bundle's config.json."""
import json
import os

from ocirt.errors import ConfigError, OcirtError


def load_bundle(bundle):
    """Return (absolute bundle, validated config, absolute rootfs)."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise OcirtError(f"cannot read {path}: no such file or directory") from None
    except OSError as e:
        raise OcirtError(f"cannot read {path}: {e.strerror}") from None
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"config.json: invalid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError("config.json: $: must be an object")
    validate(config)
    root = (config.get("root") or {}).get("path")
    if not root:
        raise ConfigError("config.json: $.root.path: required")
    rootfs = root if os.path.isabs(root) else os.path.join(bundle, root)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(f"config.json: $.root.path: {rootfs} is not a directory")
    return bundle, config, rootfs


def validate(config):
    try:
        from ocirt.spec.validate import validate_config
    except ImportError:  # schema validator not built: minimal structural checks
        validate_config = _minimal_checks
    validate_config(config)


def _minimal_checks(config):
    v = config.get("ociVersion")
    if not isinstance(v, str) or not v.startswith("1."):
        raise ConfigError(f"config.json: $.ociVersion: unsupported version {v!r}")
    proc = config.get("process")
    if proc is not None:
        if not proc.get("args"):
            raise ConfigError("config.json: $.process.args: at least one entry is required")
        if not isinstance(proc.get("cwd"), str) or not proc["cwd"].startswith("/"):
            raise ConfigError("config.json: $.process.cwd: must be an absolute path")
