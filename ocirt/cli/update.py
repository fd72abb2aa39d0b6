"""ocirt update [--resources FILE|-] [--memory ... flags] ID

Changes the resources of a created, running or paused container.  The
given fields are merged into the container's saved config (so a later
update, and ``events``, see them); each section that was given is then
applied as merged (memory limit and swap are written together, in the order
the kernel accepts).  Device rules are re-applied only when they changed,
completed with the default and linux.devices rules exactly as at create.
"""
import json
import os
import re
import sys

from ocirt.cli import require_id
from ocirt.errors import ConfigError, OcirtError, UsageError
from ocirt.state import StateStore

_SIZE = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$", re.IGNORECASE)
_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# flag → (section, field, parser)
_FLAGS = {
    "blkio-weight": ("blockIO", "weight", "int"),
    "cpu-period": ("cpu", "period", "int"),
    "cpu-quota": ("cpu", "quota", "int"),
    "cpu-burst": ("cpu", "burst", "int"),
    "cpu-share": ("cpu", "shares", "int"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "int"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset-cpus": ("cpu", "cpus", "str"),
    "cpuset-mems": ("cpu", "mems", "str"),
    "cpu-idle": ("cpu", "idle", "int"),
    "memory": ("memory", "limit", "size"),
    "memory-reservation": ("memory", "reservation", "size"),
    "memory-swap": ("memory", "swap", "size"),
    "pids-limit": ("pids", "limit", "int"),
}


def parse_size(text, flag):
    """docker/go-units RAMInBytes: "512m", "1g", "1024" (bytes), "-1" (unlimited)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise UsageError(f"invalid value for --{flag}: {text!r}")
    value = float(m.group(1)) * _SCALE[m.group(2).lower()]
    return int(value)


def _flag_resources(opts):
    res = {}
    for flag, (section, field, kind) in _FLAGS.items():
        text = opts.get(flag)
        if text is None:
            continue
        if kind == "str":
            value = text
        elif kind == "size":
            value = parse_size(text, flag)
        else:
            try:
                value = int(text)
            except ValueError:
                raise UsageError(f"invalid value for --{flag}: {text!r}") from None
        res.setdefault(section, {})[field] = value
    for flag in ("kernel-memory", "kernel-memory-tcp"):
        if opts.get(flag) is not None:
            raise UsageError(f"--{flag} is not supported: kernel memory limits were removed from Linux")
    for flag in ("l3-cache-schema", "mem-bw-schema"):
        if opts.get(flag) is not None:
            raise OcirtError(f"--{flag}: Intel RDT is not supported by ocirt")
    return res


def _read_resources(source):
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source) as f:
                text = f.read()
        res = json.loads(text)
    except OSError as exc:
        raise OcirtError(f"--resources {source}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"--resources {source}: invalid JSON: {exc}") from None
    if not isinstance(res, dict):
        raise ConfigError(f"--resources {source}: must be a JSON object (OCI LinuxResources)")
    return res


def _merge(saved, given):
    merged = dict(saved)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _check_memory_swap(given, merged):
    """A new limit above the saved memory+swap limit would be refused by the
    kernel with a bare EINVAL: say what to do instead."""
    limit, swap = merged.get("limit"), merged.get("swap")
    if "limit" in given and "swap" not in given and limit not in (None, -1) and swap not in (None, -1) \
            and swap < limit:
        raise OcirtError(f"memory limit {limit} is above the container's memory+swap limit {swap}: "
                         "set --memory-swap as well")


def run(g, opts, args):
    from ocirt import cgroups
    cid = require_id(args, "update")
    given = _read_resources(opts["resources"]) if opts.get("resources") else {}
    flags = _flag_resources(opts)
    given = _merge(given, flags) if flags else given
    store = StateStore(g.root)
    with store.load(cid).lock():
        container = store.load(cid)
        if container.status() not in ("created", "running", "paused"):
            raise OcirtError("container not running")
        config = container.load_config()
        linux = config.setdefault("linux", {})
        saved = linux.get("resources") or {}
        merged = _merge(saved, given)
        _check_memory_swap(given.get("memory") or {}, merged.get("memory") or {})
        to_apply = {k: merged[k] for k in given if k != "devices" and merged.get(k) is not None}
        if "devices" in given and given["devices"] != saved.get("devices"):
            from ocirt.container import device_rules
            to_apply["devices"] = device_rules(given["devices"], linux.get("devices") or [])
        cgroups.manager_of(container).apply_resources(to_apply)
        linux["resources"] = merged
        tmp = container.config_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f)
        os.rename(tmp, container.config_file)
    return 0
