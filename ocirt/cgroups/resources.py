"""linux.resources → cgroup files, for v1, v2 and hybrid.

Field → file mapping follows runtime-spec config-linux.md (see
/work/shared/reference/oci-runtime-cli.md §10); value conversions between
the v1-shaped OCI fields and cgroup v2 files are the ones runc and crun use
(shares → cpu.weight, blkio weight → io.weight, swap = memory+swap on v1 but
swap-only on v2).

Every controller is looked up where it really is: on a hybrid host a v1
hierarchy when one is mounted for it, otherwise the unified hierarchy (this
host has hugetlb only there).  A field whose controller exists nowhere is a
clear error naming the field, never a silent skip.
"""
import errno
import os

from ocirt.cgroups.fs import read_file, write_file
from ocirt.errors import ConfigError, OcirtError

_MAX_INT64 = (1 << 63) - 1


class _Writer:
    """Resolves controllers to directories and writes with errors naming the field."""

    def __init__(self, manager):
        self.m = manager
        self.v2_only = manager.mode == "v2"
        self._v2_enabled = {}

    def where(self, controller, field):
        """("v1"|"v2", directory) for a controller, or raise naming the field."""
        if not self.v2_only:
            p = self.m.path(controller)
            if p:
                return "v1", p
        unified = self.m.unified
        if unified:
            if controller not in self._v2_enabled:
                self.m._enable_v2_controllers({controller})
                parent_control = os.path.join(os.path.dirname(unified), "cgroup.subtree_control")
                self._v2_enabled[controller] = controller in _read_words(parent_control)
            if self._v2_enabled[controller]:
                return "v2", unified
        where = "on the unified hierarchy" if self.v2_only else "in any mounted hierarchy"
        if unified and controller in _read_words(os.path.join(_v2_root(unified), "cgroup.controllers")):
            raise OcirtError(f"linux.resources.{field}: the {controller} cgroup controller could not be enabled "
                             f"for {unified} (a parent cgroup's cgroup.subtree_control refused it: on cgroup v2 "
                             "a cgroup that holds processes cannot enable controllers for its children)")
        raise OcirtError(f"linux.resources.{field}: the {controller} cgroup controller is not available {where}")

    def write(self, field, directory, name, value):
        path = os.path.join(directory, name)
        try:
            write_file(path, value)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise OcirtError(f"linux.resources.{field}: {path} does not exist "
                                 "(this kernel does not support the setting)") from None
            raise OcirtError(f"linux.resources.{field}: cannot write {str(value).strip()!r} to {path}: "
                             f"{exc.strerror}") from None


def _v2_root(path):
    while path != "/" and not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def _read_words(path):
    try:
        return read_file(path).split()
    except OSError:
        return []


def _int(value, field, minimum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"config.json: linux.resources.{field}: must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(f"config.json: linux.resources.{field}: must be >= {minimum}")
    return value


def _section(resources, name):
    value = resources.get(name)
    if value is None:
        return None
    if not isinstance(value, (dict, list)):
        raise ConfigError(f"config.json: linux.resources.{name}: must be an object")
    return value


def apply(manager, resources):
    if not isinstance(resources, dict):
        raise ConfigError("config.json: linux.resources: must be an object")
    w = _Writer(manager)
    # cpuset first: cpu and memory settings never depend on it, but a process
    # moved into an empty v1 cpuset would fail, so it comes before anything else.
    if _section(resources, "cpu"):
        _cpu(w, resources["cpu"])
    if _section(resources, "memory"):
        _memory(w, resources["memory"])
    if _section(resources, "pids"):
        _pids(w, resources["pids"])
    if _section(resources, "blockIO"):
        _block_io(w, resources["blockIO"])
    if _section(resources, "hugepageLimits"):
        _hugepages(w, resources["hugepageLimits"])
    if _section(resources, "network"):
        _network(w, resources["network"])
    if _section(resources, "rdma"):
        _rdma(w, resources["rdma"])
    if _section(resources, "unified"):
        _unified(w, resources["unified"])
    if resources.get("devices") is not None:
        from ocirt.cgroups.devices import apply_device_rules
        apply_device_rules(manager, resources["devices"], w)


# ------------------------------------------------------------------------------ memory

def _v2_max(value):
    return "max" if value == -1 else str(value)


def _memory(w, mem):
    limit = mem.get("limit")
    swap = mem.get("swap")
    reservation = mem.get("reservation")
    for name in ("limit", "swap", "reservation", "kernel", "kernelTCP"):
        if mem.get(name) is not None:
            _int(mem[name], f"memory.{name}", minimum=-1)
    kind, d = w.where("memory", "memory")
    if mem.get("checkBeforeUpdate") and limit is not None and limit != -1:
        usage_file = "memory.usage_in_bytes" if kind == "v1" else "memory.current"
        try:
            usage = int(read_file(os.path.join(d, usage_file)))
        except (OSError, ValueError):
            usage = 0
        if usage > limit:
            raise OcirtError(f"linux.resources.memory.limit: {limit} is below the current usage {usage} "
                             "(checkBeforeUpdate)")
    if kind == "v1":
        _memory_v1(w, d, mem, limit, swap, reservation)
    else:
        _memory_v2(w, d, mem, limit, swap, reservation)


def _memory_v1(w, d, mem, limit, swap, reservation):
    # memory.memsw.limit_in_bytes must stay >= memory.limit_in_bytes at every
    # step, so the order depends on whether the limits grow or shrink.
    writes = []
    if limit is not None:
        writes.append(("memory.limit", "memory.limit_in_bytes", limit))
    if swap is not None:
        writes.append(("memory.swap", "memory.memsw.limit_in_bytes", swap))
    if len(writes) == 2:
        current = _read_int(os.path.join(d, "memory.limit_in_bytes"))
        if swap == -1 or (current is not None and swap > current):
            writes.reverse()
    for field, name, value in writes:
        w.write(field, d, name, value)
    if reservation is not None:
        w.write("memory.reservation", d, "memory.soft_limit_in_bytes", reservation)
    if mem.get("kernelTCP") is not None:
        w.write("memory.kernelTCP", d, "memory.kmem.tcp.limit_in_bytes", mem["kernelTCP"])
    # memory.kernel: kernel memory limits were removed from the kernel (5.16+
    # only keeps accounting); runc ignores the field too, the spec marks it
    # NOT RECOMMENDED.
    if mem.get("swappiness") is not None:
        value = _int(mem["swappiness"], "memory.swappiness")
        if not 0 <= value <= 100:
            raise ConfigError("config.json: linux.resources.memory.swappiness: must be between 0 and 100")
        w.write("memory.swappiness", d, "memory.swappiness", value)
    if mem.get("disableOOMKiller") is not None:
        w.write("memory.disableOOMKiller", d, "memory.oom_control", "1" if mem["disableOOMKiller"] else "0")
    if mem.get("useHierarchy"):
        w.write("memory.useHierarchy", d, "memory.use_hierarchy", "1")


def _memory_v2(w, d, mem, limit, swap, reservation):
    if limit is not None:
        w.write("memory.limit", d, "memory.max", _v2_max(limit))
    if swap is not None:
        # OCI swap is memory+swap (v1 memsw); v2 memory.swap.max is swap alone.
        if swap == -1:
            value = "max"
        else:
            if limit is None or limit == -1:
                raise ConfigError("config.json: linux.resources.memory.swap: needs memory.limit on cgroup v2")
            if swap < limit:
                raise ConfigError("config.json: linux.resources.memory.swap: must be >= memory.limit")
            value = str(swap - limit)
        w.write("memory.swap", d, "memory.swap.max", value)
    if reservation is not None:
        w.write("memory.reservation", d, "memory.low", _v2_max(reservation))
    if mem.get("swappiness") is not None:
        raise OcirtError("linux.resources.memory.swappiness: not supported on cgroup v2 (no memory.swappiness)")
    if mem.get("disableOOMKiller"):
        raise OcirtError("linux.resources.memory.disableOOMKiller: not supported on cgroup v2")


def _read_int(path):
    try:
        return int(read_file(path).strip())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------- cpu

def shares_to_weight(shares):
    """cpu.shares [2, 262144] → cpu.weight [1, 10000] (runc's conversion)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def _cpu(w, cpu):
    for name in ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "idle"):
        if cpu.get(name) is not None:
            _int(cpu[name], f"cpu.{name}", minimum=-1 if name in ("quota", "realtimeRuntime") else 0)
    for name in ("cpus", "mems"):
        if cpu.get(name) is not None:
            if not isinstance(cpu[name], str) or "\n" in cpu[name]:
                raise ConfigError(f"config.json: linux.resources.cpu.{name}: must be a cpu/node list string")
            if cpu[name]:
                kind, d = w.where("cpuset", f"cpu.{name}")
                w.write(f"cpu.{name}", d, f"cpuset.{name}", cpu[name])
    cfs = {k: cpu.get(k) for k in ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "idle")}
    if not any(v is not None for v in cfs.values()):
        return
    kind, d = w.where("cpu", "cpu")
    if kind == "v1":
        if cfs["shares"]:
            w.write("cpu.shares", d, "cpu.shares", cfs["shares"])
        if cfs["period"]:
            w.write("cpu.period", d, "cpu.cfs_period_us", cfs["period"])
        if cfs["quota"] is not None and cfs["quota"] != 0:
            w.write("cpu.quota", d, "cpu.cfs_quota_us", cfs["quota"])
        if cfs["burst"] is not None:
            w.write("cpu.burst", d, "cpu.cfs_burst_us", cfs["burst"])
        _realtime_v1(w, d, cfs["realtimePeriod"], cfs["realtimeRuntime"])
        if cfs["idle"] is not None:
            w.write("cpu.idle", d, "cpu.idle", cfs["idle"])
        return
    if cfs["realtimeRuntime"] or cfs["realtimePeriod"]:
        raise OcirtError("linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not supported on cgroup v2")
    if cfs["shares"]:
        w.write("cpu.shares", d, "cpu.weight", shares_to_weight(cfs["shares"]))
    if cfs["quota"] is not None or cfs["period"]:
        quota = cfs["quota"]
        period = cfs["period"]
        if not period:
            current = read_file(os.path.join(d, "cpu.max")).split()
            period = int(current[1]) if len(current) == 2 else 100000
        if quota is None:
            current = read_file(os.path.join(d, "cpu.max")).split()
            quota_text = current[0] if current else "max"
        else:
            quota_text = "max" if quota in (-1, 0) else str(quota)
        w.write("cpu.quota", d, "cpu.max", f"{quota_text} {period}")
    if cfs["burst"] is not None:
        w.write("cpu.burst", d, "cpu.max.burst", cfs["burst"])
    if cfs["idle"] is not None:
        w.write("cpu.idle", d, "cpu.idle", cfs["idle"])


def _realtime_v1(w, d, period, runtime):
    """cpu.rt_period_us, then cpu.rt_runtime_us (the runtime must fit in the period).

    A new cgroup starts with no realtime budget and the kernel refuses a child
    more than its parent has, so a budget for /a/b/c needs /a and /a/b to
    have one: when the leaf is refused, the budget is lent down the chain of
    ancestors below the hierarchy root (as runc and crun do) and retried.
    """
    def write_leaf():
        if period:
            w.write("cpu.realtimePeriod", d, "cpu.rt_period_us", period)
        if runtime is not None and runtime != 0:
            w.write("cpu.realtimeRuntime", d, "cpu.rt_runtime_us", runtime)
    try:
        write_leaf()
        return
    except OcirtError:
        if not runtime or runtime < 0:
            raise
    mount = _v2_root(d)
    chain = []
    parent = os.path.dirname(d)
    while parent != mount and parent.startswith(mount + "/"):
        chain.append(parent)
        parent = os.path.dirname(parent)
    for ancestor in reversed(chain):
        current = _read_int(os.path.join(ancestor, "cpu.rt_runtime_us"))
        if current is not None and 0 <= current < runtime:
            if period:
                w.write("cpu.realtimePeriod", ancestor, "cpu.rt_period_us", period)
            w.write("cpu.realtimeRuntime", ancestor, "cpu.rt_runtime_us", runtime)
    write_leaf()


# -------------------------------------------------------------------------------- pids

def _pids(w, pids):
    limit = pids.get("limit")
    if limit is None:
        return
    _int(limit, "pids.limit", minimum=-1)
    if limit == 0:
        return  # 0 means "unset" to runc and podman; pids.max 0 would forbid even init
    kind, d = w.where("pids", "pids.limit")
    w.write("pids.limit", d, "pids.max", "max" if limit == -1 else limit)


# ----------------------------------------------------------------------------- blockIO

def blkio_weight_to_io_weight(weight):
    """blkio weight [10, 1000] → io.weight [1, 10000] (runc's conversion)."""
    return 1 + (weight - 10) * 9999 // 990


def _device_key(entry, field):
    major = _int(entry.get("major"), f"{field}.major", minimum=0)
    minor = _int(entry.get("minor"), f"{field}.minor", minimum=0)
    return f"{major}:{minor}"


def _block_io(w, bio):
    kind, d = w.where("blkio" if not w.v2_only else "io", "blockIO")
    weight = bio.get("weight")
    leaf_weight = bio.get("leafWeight")
    if kind == "v1":
        files = set(os.listdir(d))
        weight_file = "blkio.weight" if "blkio.weight" in files else "blkio.bfq.weight"
        if weight:
            _int(weight, "blockIO.weight", minimum=10)
            if weight_file not in files:
                raise OcirtError("linux.resources.blockIO.weight: this kernel has no blkio.weight "
                                 "(CFQ/BFQ proportional weights are not available)")
            w.write("blockIO.weight", d, weight_file, weight)
        if leaf_weight:
            w.write("blockIO.leafWeight", d, "blkio.leaf_weight", _int(leaf_weight, "blockIO.leafWeight"))
        for i, entry in enumerate(bio.get("weightDevice") or []):
            field = f"blockIO.weightDevice[{i}]"
            key = _device_key(entry, field)
            if weight_file not in files:
                raise OcirtError(f"linux.resources.{field}: this kernel has no per-device blkio weights")
            name = "blkio.weight_device" if weight_file == "blkio.weight" else "blkio.bfq.weight_device"
            if entry.get("weight"):
                w.write(field, d, name, f"{key} {_int(entry['weight'], field + '.weight')}")
            if entry.get("leafWeight"):
                w.write(field, d, "blkio.leaf_weight_device", f"{key} {_int(entry['leafWeight'], field)}")
        for oci, v1name in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                            ("throttleReadIOPSDevice", "read_iops_device"), ("throttleWriteIOPSDevice", "write_iops_device")):
            for i, entry in enumerate(bio.get(oci) or []):
                field = f"blockIO.{oci}[{i}]"
                rate = _int(entry.get("rate"), field + ".rate", minimum=0)
                w.write(field, d, f"blkio.throttle.{v1name}", f"{_device_key(entry, field)} {rate}")
        return
    files = set(os.listdir(d))
    weight_file = "io.bfq.weight" if "io.bfq.weight" in files else "io.weight"
    if weight:
        _int(weight, "blockIO.weight", minimum=10)
        value = weight if weight_file == "io.bfq.weight" else blkio_weight_to_io_weight(weight)
        w.write("blockIO.weight", d, weight_file, f"default {value}" if weight_file == "io.weight" else value)
    if leaf_weight:
        raise OcirtError("linux.resources.blockIO.leafWeight: not supported on cgroup v2")
    for i, entry in enumerate(bio.get("weightDevice") or []):
        field = f"blockIO.weightDevice[{i}]"
        if entry.get("weight"):
            weight_value = _int(entry["weight"], field + ".weight", minimum=10)
            if weight_file == "io.weight":
                weight_value = blkio_weight_to_io_weight(weight_value)
            w.write(field, d, weight_file, f"{_device_key(entry, field)} {weight_value}")
    for oci, key in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                     ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for i, entry in enumerate(bio.get(oci) or []):
            field = f"blockIO.{oci}[{i}]"
            rate = _int(entry.get("rate"), field + ".rate", minimum=0)
            w.write(field, d, "io.max", f"{_device_key(entry, field)} {key}={rate or 'max'}")


# --------------------------------------------------------------------------- hugetlb

def _hugepages(w, limits):
    if not isinstance(limits, list):
        raise ConfigError("config.json: linux.resources.hugepageLimits: must be an array")
    for i, entry in enumerate(limits):
        field = f"hugepageLimits[{i}]"
        size = entry.get("pageSize") if isinstance(entry, dict) else None
        if not isinstance(size, str) or not size or "/" in size or "\n" in size:
            raise ConfigError(f"config.json: linux.resources.{field}.pageSize: must be a size such as 2MB")
        limit = _int(entry.get("limit"), field + ".limit", minimum=0)
        kind, d = w.where("hugetlb", field)
        name = f"hugetlb.{size}.limit_in_bytes" if kind == "v1" else f"hugetlb.{size}.max"
        if not os.path.exists(os.path.join(d, name)):
            raise OcirtError(f"linux.resources.{field}.pageSize: no {size} huge pages on this host ({name} missing)")
        w.write(field, d, name, limit)


# --------------------------------------------------------------------------- network

def _network(w, net):
    if net.get("classID") is not None:
        kind, d = w.where("net_cls", "network.classID")
        if kind != "v1":
            raise OcirtError("linux.resources.network.classID: net_cls does not exist on cgroup v2")
        w.write("network.classID", d, "net_cls.classid", _int(net["classID"], "network.classID", minimum=0))
    for i, entry in enumerate(net.get("priorities") or []):
        field = f"network.priorities[{i}]"
        kind, d = w.where("net_prio", field)
        if kind != "v1":
            raise OcirtError(f"linux.resources.{field}: net_prio does not exist on cgroup v2")
        name = entry.get("name")
        if not isinstance(name, str) or not name or " " in name or "\n" in name:
            raise ConfigError(f"config.json: linux.resources.{field}.name: must be an interface name")
        w.write(field, d, "net_prio.ifpriomap", f"{name} {_int(entry.get('priority'), field + '.priority', minimum=0)}")


# ------------------------------------------------------------------------------ rdma

def _rdma(w, rdma):
    for device, limits in rdma.items():
        field = f"rdma.{device}"
        if not isinstance(device, str) or not device or " " in device or "\n" in device:
            raise ConfigError(f"config.json: linux.resources.{field}: invalid device name")
        kind, d = w.where("rdma", field)
        parts = []
        for oci, key in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
            if (limits or {}).get(oci) is not None:
                parts.append(f"{key}={_int(limits[oci], f'{field}.{oci}', minimum=0)}")
        if parts:
            w.write(field, d, "rdma.max", f"{device} {' '.join(parts)}")


# --------------------------------------------------------------------------- unified

# unified key → (v1 controller, v1 file, value converter) where a faithful
# mapping exists; used when the controller lives on a v1 hierarchy.
def _v1_from_max(value):
    return "-1" if value.strip() == "max" else value.strip()


def _v1_shares(value):
    # inverse of shares_to_weight
    return str(2 + ((int(value) - 1) * 262142) // 9999)


_UNIFIED_TO_V1 = {
    "memory.max": ("memory", "memory.limit_in_bytes", _v1_from_max),
    "memory.low": ("memory", "memory.soft_limit_in_bytes", _v1_from_max),
    "pids.max": ("pids", "pids.max", str.strip),
    "cpu.weight": ("cpu", "cpu.shares", _v1_shares),
    "cpu.idle": ("cpu", "cpu.idle", str.strip),
    "cpuset.cpus": ("cpuset", "cpuset.cpus", str.strip),
    "cpuset.mems": ("cpuset", "cpuset.mems", str.strip),
}


def _unified(w, unified):
    if not isinstance(unified, dict):
        raise ConfigError("config.json: linux.resources.unified: must be an object")
    for key, value in unified.items():
        field = f"unified.{key}"
        if not isinstance(key, str) or not key or "/" in key or key.startswith(".") or "\0" in key:
            raise ConfigError(f"config.json: linux.resources.{field}: not a cgroup file name")
        if not isinstance(value, str):
            raise ConfigError(f"config.json: linux.resources.{field}: value must be a string")
        controller = key.split(".", 1)[0]
        if key == "cpu.max":
            _unified_cpu_max(w, field, value)
            continue
        if controller == "cgroup":  # core interface files exist on v2 only
            if not w.m.unified:
                raise OcirtError(f"linux.resources.{field}: needs a cgroup v2 hierarchy")
            w.write(field, w.m.unified, key, value)
            continue
        try:
            kind, d = w.where(controller, field)
        except OcirtError:
            raise OcirtError(f"linux.resources.{field}: the {controller} controller is not available") from None
        if kind == "v2":
            w.write(field, d, key, value)
        elif key in _UNIFIED_TO_V1:
            _, v1name, convert = _UNIFIED_TO_V1[key]
            w.write(field, d, v1name, convert(value))
        elif key.startswith("hugetlb.") and key.endswith(".max"):
            w.write(field, d, key[:-len(".max")] + ".limit_in_bytes", _v1_from_max(value))
        else:
            raise OcirtError(f"linux.resources.{field}: the {controller} controller is on a cgroup v1 hierarchy "
                             "and this key has no v1 equivalent")


def _unified_cpu_max(w, field, value):
    kind, d = w.where("cpu", field)
    if kind == "v2":
        w.write(field, d, "cpu.max", value)
        return
    parts = value.split()
    if not parts or len(parts) > 2:
        raise ConfigError(f"config.json: linux.resources.{field}: expected \"$MAX [$PERIOD]\"")
    if len(parts) == 2:
        w.write(field, d, "cpu.cfs_period_us", parts[1])
    w.write(field, d, "cpu.cfs_quota_us", _v1_from_max(parts[0]))
