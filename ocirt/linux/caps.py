"""Capability sets (process.capabilities): bounding, effective, permitted,
inheritable, ambient.  Names come from the capability list of the kernel
UAPI; a name outside it is a config error (runtime-tools
process_capabilities_fail), a known one the running kernel lacks is only
warned about, as the spec says.
"""
import os

from ocirt import log
from ocirt.errors import ConfigError

# Index = capability number (linux/capability.h order).
CAP_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS = {name: i for i, name in enumerate(CAP_NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        from ocirt.linux.sys import C
        return C.CAP_LAST_CAP


def parse(caps_cfg, where="process.capabilities"):
    """{set: [names]} -> {set: bitmask}; unknown names are errors."""
    kernel_last = last_cap()
    masks = {}
    for s in SETS:
        mask = 0
        for i, name in enumerate((caps_cfg or {}).get(s) or []):
            num = CAP_NUMBERS.get(name)
            if num is None:
                raise ConfigError(f"config.json: {where}.{s}[{i}]: unknown capability {name!r}")
            if num > kernel_last:
                log.warning(f"{where}.{s}: {name} is not supported by this kernel, ignored")
                continue
            mask |= 1 << num
        masks[s] = mask
    return masks


def drop_bounding(bounding_mask):
    from ocirt.linux import sys as lsys
    for cap in range(last_cap() + 1):
        if not bounding_mask & (1 << cap):
            lsys.prctl(lsys.C.PR_CAPBSET_DROP, cap)


def apply(masks):
    """After the uid switch (with KEEPCAPS): set e/p/i, then the ambient set."""
    from ocirt.linux import sys as lsys
    lsys.capset(masks["effective"], masks["permitted"], masks["inheritable"])
    lsys.prctl(lsys.C.PR_CAP_AMBIENT, lsys.C.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(last_cap() + 1):
        if masks["ambient"] & (1 << cap):
            try:
                lsys.prctl(lsys.C.PR_CAP_AMBIENT, lsys.C.PR_CAP_AMBIENT_RAISE, cap)
            except OSError:
                log.warning(f"cannot raise ambient capability {CAP_NAMES[cap]} (not permitted and inheritable)")
