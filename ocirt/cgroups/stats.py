"""Resource usage in the runc ``events`` "data" format.

Field names and JSON keys follow containerd/go-runc events.go (the decoder
containerd uses) and runc's types/events.go: cpu.usage{total, percpu,
kernel, user}, cpu.throttling{periods, throttledPeriods, throttledTime},
memory{cache, usage, swap, kernel, kernelTCP, raw} with entries {limit,
usage, max, failcnt}, pids{current, limit}, blkio{ioServiceBytesRecursive,
ioServicedRecursive, ...} with entries {major, minor, op, value},
hugetlb{<size>: {usage, max, failcnt}}.  All numbers are unsigned: "max"
(unlimited) becomes 0 for pids.limit and the largest int64 page-aligned
value for memory, as runc reports.

cpu times: v1 cpuacct.stat is in USER_HZ ticks, v2 cpu.stat in microseconds;
both are reported in nanoseconds.
"""
import os

from ocirt.cgroups.fs import read_file

_UNLIMITED = (1 << 63) - 1 - 4095   # what runc shows for an unlimited v1/v2 memory limit
_NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _read(directory, name):
    try:
        return read_file(os.path.join(directory, name))
    except OSError:
        return None


def _num(directory, name):
    text = _read(directory, name)
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return _UNLIMITED
    try:
        return max(int(text.split()[0]), 0)
    except (ValueError, IndexError):
        return 0


def _keyed(directory, name):
    """A "key value" per line file (memory.stat, cpu.stat, ...) as a dict of ints."""
    text = _read(directory, name) or ""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def collect(manager):
    where = _Locator(manager)
    return {
        "cpu": _cpu(where),
        "memory": _memory(where),
        "pids": _pids(where),
        "blkio": _blkio(where),
        "hugetlb": _hugetlb(where),
        "network_interfaces": None,
    }


class _Locator:
    def __init__(self, manager):
        self.m = manager

    def __call__(self, controller):
        """("v1"|"v2", dir) where ``controller``'s files are, or (None, None)."""
        if self.m.mode != "v2":
            p = self.m.path(controller)
            if p and os.path.isdir(p):
                return "v1", p
        u = self.m.unified
        if u and os.path.isdir(u):
            enabled = (_read(os.path.dirname(u), "cgroup.subtree_control") or "").split()
            if controller in enabled or controller == "cpu":  # cpu.stat usage is always there on v2
                return "v2", u
        return None, None


def _cpu(where):
    usage = {"total": 0, "percpu": None, "kernel": 0, "user": 0}
    throttling = {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}
    kind, d = where("cpuacct")
    if kind == "v1":
        usage["total"] = _num(d, "cpuacct.usage")
        percpu = (_read(d, "cpuacct.usage_percpu") or "").split()
        usage["percpu"] = [int(x) for x in percpu] or None
        times = _keyed(d, "cpuacct.stat")
        usage["user"] = times.get("user", 0) * _NS_PER_TICK
        usage["kernel"] = times.get("system", 0) * _NS_PER_TICK
    kind, d = where("cpu")
    if kind is None:
        return {"usage": usage, "throttling": throttling}
    stat = _keyed(d, "cpu.stat")
    if kind == "v2":
        usage["total"] = stat.get("usage_usec", 0) * 1000
        usage["user"] = stat.get("user_usec", 0) * 1000
        usage["kernel"] = stat.get("system_usec", 0) * 1000
        throttled_ns = stat.get("throttled_usec", 0) * 1000
    else:
        throttled_ns = stat.get("throttled_time", 0)
    throttling.update(periods=stat.get("nr_periods", 0), throttledPeriods=stat.get("nr_throttled", 0),
                      throttledTime=throttled_ns)
    return {"usage": usage, "throttling": throttling}


def _entry(limit=0, usage=0, maximum=0, failcnt=0):
    return {"limit": limit, "usage": usage, "max": maximum, "failcnt": failcnt}


def _memory(where):
    kind, d = where("memory")
    if kind is None:
        return {}
    raw = _keyed(d, "memory.stat")
    if kind == "v1":
        def entry(prefix):
            return _entry(_num(d, prefix + "limit_in_bytes"), _num(d, prefix + "usage_in_bytes"),
                          _num(d, prefix + "max_usage_in_bytes"), _num(d, prefix + "failcnt"))
        return {"cache": raw.get("total_cache", raw.get("cache", 0)), "usage": entry("memory."),
                "swap": entry("memory.memsw."), "kernel": entry("memory.kmem."),
                "kernelTCP": entry("memory.kmem.tcp."), "raw": raw}
    events = _keyed(d, "memory.events")
    usage = _entry(_num(d, "memory.max"), _num(d, "memory.current"), _num(d, "memory.peak"), events.get("max", 0))
    swap = _entry(_num(d, "memory.swap.max"), _num(d, "memory.swap.current"), _num(d, "memory.swap.peak"),
                  _keyed(d, "memory.swap.events").get("max", 0))
    return {"cache": raw.get("file", 0), "usage": usage, "swap": swap, "kernel": _entry(usage=raw.get("kernel", 0)),
            "kernelTCP": _entry(usage=raw.get("sock", 0)), "raw": raw}


def _pids(where):
    kind, d = where("pids")
    if kind is None:
        return {}
    limit = _num(d, "pids.max")
    return {"current": _num(d, "pids.current"), "limit": 0 if limit == _UNLIMITED else limit}


def _blkio(where):
    kind, d = where("blkio" if where.m.mode != "v2" else "io")
    if kind is None:
        return {}
    if kind == "v1":
        out = {}
        for key, name in (("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive"),
                          ("ioServicedRecursive", "blkio.throttle.io_serviced_recursive")):
            entries = []
            for line in (_read(d, name) or "").splitlines():
                parts = line.split()
                if len(parts) == 3 and ":" in parts[0]:
                    major, minor = parts[0].split(":")
                    entries.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
            if entries:
                out[key] = entries
        return out
    service_bytes, serviced = [], []
    for line in (_read(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for op, bytes_key, ios_key in (("Read", "rbytes", "rios"), ("Write", "wbytes", "wios")):
            service_bytes.append({"major": major, "minor": minor, "op": op, "value": int(fields.get(bytes_key, 0))})
            serviced.append({"major": major, "minor": minor, "op": op, "value": int(fields.get(ios_key, 0))})
    out = {}
    if service_bytes:
        out = {"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced}
    return out


def _hugetlb(where):
    kind, d = where("hugetlb")
    if kind is None:
        return {}
    out = {}
    sizes = sorted({name.split(".")[1] for name in os.listdir(d) if name.startswith("hugetlb.")})
    for size in sizes:
        if kind == "v1":
            out[size] = {"usage": _num(d, f"hugetlb.{size}.usage_in_bytes"),
                         "max": _num(d, f"hugetlb.{size}.max_usage_in_bytes"),
                         "failcnt": _num(d, f"hugetlb.{size}.failcnt")}
        else:
            out[size] = {"usage": _num(d, f"hugetlb.{size}.current"), "max": 0,
                         "failcnt": _keyed(d, f"hugetlb.{size}.events").get("max", 0)}
    return out
