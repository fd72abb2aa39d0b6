"""Loading a bundle's config.json."""
import os

from ocirt import jsonio
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
        config = jsonio.loads(raw)
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
    from ocirt.spec.validate import validate_config
    validate_config(config)
