"""config.json validation: accepted configs, and one clear line naming the JSON path for each bad one.

The fixtures here are shared with test_validate_equivalence.py and benchmarks/validate_bench.py.
"""
import copy
import json
import os
import subprocess
import sys

import pytest

from ocirt.errors import ConfigError
from ocirt.spec import validate
from ocirt.spec.default import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every field of runtime-spec 1.3's config.json that ocirt's schemas describe.
KITCHEN_SINK = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs", "readonly": True},
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"],
         "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        {"destination": "/tmp"},
    ],
    "process": {
        "terminal": False,
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6], "username": "app"},
        "args": ["/bin/sh", "-c", "echo hi"],
        "commandLine": "",
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/srv",
        "capabilities": {
            "bounding": ["CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"], "effective": ["CAP_KILL"],
            "inheritable": [], "permitted": ["CAP_KILL", "CAP_BPF"], "ambient": ["CAP_PERFMON"],
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615}],
        "apparmorProfile": "acme_secure_profile",
        "noNewPrivileges": True,
        "oomScoreAdj": -100,
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -5, "priority": 0, "flags": ["SCHED_FLAG_RECLAIM"],
                      "runtime": 10000000, "deadline": 20000000, "period": 20000000},
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "execCPUAffinity": {"initial": "0", "final": "0-3, 7"},
    },
    "hostname": "box",
    "domainname": "example.org",
    "hooks": {
        "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"], "env": ["key1=value1"]}],
        "createRuntime": [{"path": "/usr/bin/setup-network", "timeout": 5}],
        "createContainer": [{"path": "/usr/bin/mount-hook"}],
        "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
        "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
        "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
    },
    "annotations": {"com.example.key1": "value1", "org.opencontainers.image.os": "linux"},
    "linux": {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time")],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "timeOffsets": {"monotonic": {"secs": -3600, "nanosecs": 0}, "boottime": {"secs": 86400}},
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
                    {"path": "/dev/mypipe", "type": "p"}],
        "netDevices": {"eth1": {"name": "ctr1"}, "dummy0": {}},
        "cgroupsPath": "/myRuntime/myContainer",
        "resources": {
            "devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
            "memory": {"limit": 536870912, "reservation": 536870912, "swap": -1, "kernel": -1, "kernelTCP": -1,
                       "swappiness": 0, "disableOOMKiller": False, "useHierarchy": True, "checkBeforeUpdate": True},
            "cpu": {"shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000, "realtimeRuntime": 950000,
                    "realtimePeriod": 1000000, "cpus": "2-3", "mems": "0-7", "idle": 0},
            "blockIO": {"weight": 10, "leafWeight": 10,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                                         {"major": 8, "minor": 16, "weight": 500}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                        "throttleWriteBpsDevice": [], "throttleReadIOPSDevice": [],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "64KB", "limit": 1000000}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "pids": {"limit": 32771},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 10000}},
            "unified": {"io.max": "259:0 rbps=2097152 wiops=120", "memory.high": "1073741824"},
        },
        "intelRdt": {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70",
                     "schemata": ["L2:0=f;1=f"], "enableMonitoring": True},
        "sysctl": {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerPath": "/run/seccomp-agent.sock", "listenerMetadata": "MKNOD=/dev/null",
            "syscalls": [
                {"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            ],
        },
        "rootfsPropagation": "slave",
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "personality": {"domain": "LINUX32", "flags": []},
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-3,7", "flags": ["MPOL_F_STATIC_NODES"]},
    },
}

# A runtime-spec 1.0 config with only the required fields.
MINIMAL = {"ociVersion": "1.0.0", "root": {"path": "rootfs"}}

GOOD_STATES = [
    {"ociVersion": "1.2.0", "id": "c1", "status": "running", "pid": 4422, "bundle": "/containers/redis",
     "annotations": {"myKey": "myValue"}},
    {"ociVersion": "1.0.2", "id": "c2", "status": "stopped", "bundle": "/b"},
    {"ociVersion": "1.2.0", "id": "c3", "status": "creating", "pid": 0, "bundle": "/b", "rootfs": "/b/rootfs"},
]

GOOD_FEATURES = [
    {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"},
    {
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro"],
        "annotations": {"io.github.ocirt.version": "0.1.0"},
        "potentiallyUnsafeConfigAnnotations": ["run.oci.handler"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": list(validate.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY"], "operators": ["SCMP_CMP_EQ"],
                        "archs": ["SCMP_ARCH_X86_64"], "knownFlags": ["SECCOMP_FILTER_FLAG_LOG"],
                        "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"]},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
            "intelRdt": {"enabled": False, "schemata": False, "monitoring": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": True},
            "memoryPolicy": {"modes": ["MPOL_DEFAULT", "MPOL_BIND"], "flags": ["MPOL_F_STATIC_NODES"]},
        },
    },
]


# The config.json podman 4.3 wrote on this machine for `podman create --network=none <busybox image>
# /bin/sh -c true` (only the overlay path shortened): what ocirt sees most often.
PODMAN_CONFIG_JSON = '''\
{ "ociVersion": "1.0.2-dev", "process": { "user": { "uid": 0, "gid": 0, "umask": 18 }, "args": [ "/bin/sh",
"-c", "true" ], "env": [ "TERM=xterm", "container=podman",
"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=ec7d059f71ff" ], "cwd": "/",
"capabilities": { "bounding": [ "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT" ],
"effective": [ "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT" ],
"permitted": [ "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT" ] },
"rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576 }, { "type": "RLIMIT_NPROC",
"hard": 32768, "soft": 32768 } ] }, "root": { "path": "/var/lib/containers/storage/overlay/278dd6c5/merged"
}, "hostname": "ec7d059f71ff", "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc",
"options": [ "nosuid", "noexec", "nodev" ] }, { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
"options": [ "nosuid", "noexec", "strictatime", "mode=755", "size=65536k" ] }, { "destination": "/sys",
"type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] }, {
"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": [ "nosuid", "noexec",
"newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] }, { "destination": "/dev/mqueue", "type": "mqueue",
"source": "mqueue", "options": [ "nosuid", "noexec", "nodev" ] }, { "destination": "/dev/shm",
"type": "bind",
"source": "/var/lib/containers/storage/overlay-containers/ec7d059f71ff11c95f04919c9f1942c3ea82543739862e3d7bf6866b7edc74a9/userdata/shm",
"options": [ "bind", "rprivate", "nosuid", "noexec", "nodev" ] }, { "destination": "/run/.containerenv",
"type": "bind",
"source": "/run/containers/storage/overlay-containers/ec7d059f71ff11c95f04919c9f1942c3ea82543739862e3d7bf6866b7edc74a9/userdata/.containerenv",
"options": [ "bind", "rprivate" ] }, { "destination": "/etc/hostname", "type": "bind",
"source": "/run/containers/storage/overlay-containers/ec7d059f71ff11c95f04919c9f1942c3ea82543739862e3d7bf6866b7edc74a9/userdata/hostname",
"options": [ "bind", "rprivate" ] }, { "destination": "/etc/hosts", "type": "bind",
"source": "/run/containers/storage/overlay-containers/ec7d059f71ff11c95f04919c9f1942c3ea82543739862e3d7bf6866b7edc74a9/userdata/hosts",
"options": [ "bind", "rprivate" ] }, { "destination": "/sys/fs/cgroup", "type": "cgroup",
"source": "cgroup", "options": [ "rprivate", "nosuid", "noexec", "nodev", "relatime", "ro" ] } ],
"annotations": { "io.container.manager": "libpod",
"io.kubernetes.cri-o.Created": "2026-11-22T10:50:40.774460813Z", "io.kubernetes.cri-o.TTY": "false",
"io.podman.annotations.autoremove": "FALSE", "io.podman.annotations.init": "FALSE",
"io.podman.annotations.privileged": "FALSE", "io.podman.annotations.publish-all": "FALSE",
"org.opencontainers.image.stopSignal": "15" }, "linux": { "sysctl": { "net.ipv4.ping_group_range": "0 0" },
"resources": { "devices": [ { "allow": false, "access": "rwm" } ], "pids": { "limit": 2048 } },
"cgroupsPath": "/libpod_parent/libpod-ec7d059f71ff11c95f04919c9f1942c3ea82543739862e3d7bf6866b7edc74a9",
"namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, {
"type": "mount" } ], "seccomp": { "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
"architectures": [ "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" ], "syscalls": [ { "names": [
"bdflush", "io_pgetevents", "kexec_file_load", "kexec_load", "migrate_pages", "move_pages", "nfsservctl",
"nice", "oldfstat", "oldlstat", "oldolduname", "oldstat", "olduname", "pciconfig_iobase", "pciconfig_read",
"pciconfig_write", "sgetmask", "ssetmask", "swapcontext", "swapoff", "swapon", "sysfs", "uselib",
"userfaultfd", "ustat", "vm86", "vm86old", "vmsplice" ], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }, {
"names": [ "_llseek", "_newselect", "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk",
"capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
"clock_nanosleep_time64", "clone", "clone3", "close", "close_range", "connect", "copy_file_range", "creat",
"dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
"epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit",
"exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
"fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
"fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsconfig", "fsetxattr", "fsmount", "fsopen",
"fspick", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
"futex", "futex_time64", "futimesat", "get_mempolicy", "get_robust_list", "get_thread_area", "getcpu",
"getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
"getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
"getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
"getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getuid32",
"getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
"io_destroy", "io_getevents", "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set", "ipc", "keyctl",
"kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
"lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr",
"lstat", "lstat64", "madvise", "mbind", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mount", "mount_setattr",
"move_mount", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
"mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget",
"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
"newfstatat", "open", "open_tree", "openat", "openat2", "pause", "pidfd_getfd", "pidfd_open",
"pidfd_send_signal", "pipe", "pipe2", "pivot_root", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
"ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
"process_vm_readv", "process_vm_writev", "pselect6", "pselect6_time64", "ptrace", "pwrite64", "pwritev",
"pwritev2", "read", "readahead", "readdir", "readlink", "readlinkat", "readv", "reboot", "recv", "recvfrom",
"recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
"renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
"rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
"rt_tgsigqueueinfo", "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
"sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
"sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
"sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
"semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "set_mempolicy",
"set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32",
"setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setns", "setpgid", "setpriority",
"setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
"setrlimit", "setsid", "setsockopt", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
"shutdown", "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4", "sigpending", "sigprocmask",
"sigreturn", "sigsuspend", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64",
"statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "syscall", "sysinfo", "syslog", "tee",
"tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
"timer_settime", "timer_settime64", "timerfd", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
"timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
"umount", "umount2", "uname", "unlink", "unlinkat", "unshare", "utime", "utimensat", "utimensat_time64",
"utimes", "vfork", "wait4", "waitid", "waitpid", "write", "writev" ], "action": "SCMP_ACT_ALLOW" }, {
"names": [ "personality" ], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 0, "value": 0,
"op": "SCMP_CMP_EQ" } ] }, { "names": [ "personality" ], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 0,
"value": 8, "op": "SCMP_CMP_EQ" } ] }, { "names": [ "personality" ], "action": "SCMP_ACT_ALLOW", "args": [ {
"index": 0, "value": 131072, "op": "SCMP_CMP_EQ" } ] }, { "names": [ "personality" ],
"action": "SCMP_ACT_ALLOW", "args": [ { "index": 0, "value": 131080, "op": "SCMP_CMP_EQ" } ] }, { "names": [
"personality" ], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 0, "value": 4294967295,
"op": "SCMP_CMP_EQ" } ] }, { "names": [ "arch_prctl" ], "action": "SCMP_ACT_ALLOW" }, { "names": [
"modify_ldt" ], "action": "SCMP_ACT_ALLOW" }, { "names": [ "open_by_handle_at" ],
"action": "SCMP_ACT_ERRNO", "errnoRet": 1 }, { "names": [ "bpf", "fanotify_init", "lookup_dcookie",
"perf_event_open", "quotactl", "setdomainname", "sethostname", "setns" ], "action": "SCMP_ACT_ERRNO",
"errnoRet": 1 }, { "names": [ "chroot" ], "action": "SCMP_ACT_ALLOW" }, { "names": [ "delete_module",
"finit_module", "init_module", "query_module" ], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }, { "names": [
"acct" ], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }, { "names": [ "kcmp", "process_madvise" ],
"action": "SCMP_ACT_ERRNO", "errnoRet": 1 }, { "names": [ "ioperm", "iopl" ], "action": "SCMP_ACT_ERRNO",
"errnoRet": 1 }, { "names": [ "clock_settime", "clock_settime64", "settimeofday", "stime" ],
"action": "SCMP_ACT_ERRNO", "errnoRet": 1 }, { "names": [ "vhangup" ], "action": "SCMP_ACT_ERRNO",
"errnoRet": 1 }, { "names": [ "socket" ], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [ {
"index": 0, "value": 16, "op": "SCMP_CMP_EQ" }, { "index": 2, "value": 9, "op": "SCMP_CMP_EQ" } ] }, {
"names": [ "socket" ], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 2, "value": 9, "op": "SCMP_CMP_NE" }
] }, { "names": [ "socket" ], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 0, "value": 16,
"op": "SCMP_CMP_NE" } ] }, { "names": [ "socket" ], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 2,
"value": 9, "op": "SCMP_CMP_NE" } ] } ] }, "maskedPaths": [ "/proc/acpi", "/proc/kcore", "/proc/keys",
"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
"/sys/firmware", "/sys/fs/selinux", "/sys/dev/block" ], "readonlyPaths": [ "/proc/asound", "/proc/bus",
"/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ] } }
'''


def good_configs():
    """(name, config) pairs that must be accepted."""
    return [
        ("default", default_spec()),
        ("default-rootless", default_spec(rootless=True)),
        ("kitchen-sink-1.3", KITCHEN_SINK),
        ("minimal-1.0", MINIMAL),
        ("podman-4.3", json.loads(PODMAN_CONFIG_JSON)),
    ]


def mutated(config, change):
    config = copy.deepcopy(config)
    change(config)
    return config


# (what is wrong, change applied to KITCHEN_SINK, expected JSON path, a word the message must contain)
BAD_CONFIGS = [
    ("not an object", lambda c: c.clear() or c.update(x=[]), "$.ociVersion", "required"),
    ("ociVersion missing", lambda c: c.pop("ociVersion"), "$.ociVersion", "required"),
    ("ociVersion not a string", lambda c: c.update(ociVersion=1.2), "$.ociVersion", "string"),
    ("ociVersion major 2", lambda c: c.update(ociVersion="2.0.0"), "$.ociVersion", "not supported"),
    ("ociVersion 1.4", lambda c: c.update(ociVersion="1.4.0"), "$.ociVersion", "not supported"),
    ("ociVersion 0.x", lambda c: c.update(ociVersion="0.6.0"), "$.ociVersion", "not supported"),
    ("ociVersion not semver", lambda c: c.update(ociVersion="1.0"), "$.ociVersion", "SemVer"),
    ("root.path missing", lambda c: c["root"].pop("path"), "$.root.path", "required"),
    ("root.readonly string", lambda c: c["root"].update(readonly="yes"), "$.root.readonly", "boolean"),
    ("mount without destination", lambda c: c["mounts"][1].pop("destination"), "$.mounts[1].destination", "required"),
    ("mount options not strings", lambda c: c["mounts"][1].update(options=["ro", 1]), "$.mounts[1].options[1]",
     "string"),
    ("process.cwd missing", lambda c: c["process"].pop("cwd"), "$.process.cwd", "required"),
    ("process.cwd relative", lambda c: c["process"].update(cwd="srv"), "$.process.cwd", "absolute"),
    ("process.args empty", lambda c: c["process"].update(args=[]), "$.process.args", "at least one"),
    ("uid negative", lambda c: c["process"]["user"].update(uid=-1), "$.process.user.uid", "range"),
    ("gid too big", lambda c: c["process"]["user"].update(gid=2 ** 32), "$.process.user.gid", "range"),
    ("uid float", lambda c: c["process"]["user"].update(uid=1.0), "$.process.user.uid", "integer"),
    ("uid bool", lambda c: c["process"]["user"].update(uid=True), "$.process.user.uid", "integer"),
    ("unknown capability", lambda c: c["process"]["capabilities"]["permitted"].append("CAP_LOOK_AT_ME"),
     "$.process.capabilities.permitted[2]", "unknown capability"),
    ("capability without CAP_", lambda c: c["process"]["capabilities"]["bounding"].insert(0, "chown"),
     "$.process.capabilities.bounding[0]", "CAP_"),
    ("capability number 41", lambda c: c["process"]["capabilities"]["ambient"].append("CAP_41"),
     "$.process.capabilities.ambient[1]", "CAP_"),
    ("rlimit type lower case", lambda c: c["process"]["rlimits"][1].update(type="RLIMIT_core"),
     "$.process.rlimits[1].type", "RLIMIT_"),
    ("rlimit type unknown", lambda c: c["process"]["rlimits"][1].update(type="RLIMIT_FOO"),
     "$.process.rlimits[1].type", "unknown rlimit"),
    ("rlimit duplicate", lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_CORE", "soft": 1, "hard": 1}),
     "$.process.rlimits[2].type", "duplicate"),
    ("rlimit soft missing", lambda c: c["process"]["rlimits"][0].pop("soft"), "$.process.rlimits[0].soft",
     "required"),
    ("rlimit hard 2**64", lambda c: c["process"]["rlimits"][0].update(hard=2 ** 64), "$.process.rlimits[0].hard",
     "range"),
    ("scheduler policy unknown", lambda c: c["process"]["scheduler"].update(policy="SCHED_FAST"),
     "$.process.scheduler.policy", "one of"),
    ("ioPriority class missing", lambda c: c["process"]["ioPriority"].pop("class"), "$.process.ioPriority.class",
     "required"),
    ("execCPUAffinity letters", lambda c: c["process"]["execCPUAffinity"].update(final="all"),
     "$.process.execCPUAffinity.final", "match"),
    ("consoleSize width missing", lambda c: c["process"]["consoleSize"].pop("width"), "$.process.consoleSize.width",
     "required"),
    ("hook path relative", lambda c: c["hooks"]["poststop"][0].update(path="cleanup.sh"), "$.hooks.poststop[0].path",
     "absolute"),
    ("hook timeout zero", lambda c: c["hooks"]["poststart"][0].update(timeout=0), "$.hooks.poststart[0].timeout",
     "minimum"),
    ("hook without path", lambda c: c["hooks"]["createRuntime"][0].pop("path"), "$.hooks.createRuntime[0].path",
     "required"),
    ("annotation value not string", lambda c: c["annotations"].update({"com.example/x": 1}),
     '$.annotations["com.example/x"]', "string"),
    ("namespace duplicate", lambda c: c["linux"]["namespaces"].append({"type": "network", "path": "/run/netns/a"}),
     "$.linux.namespaces[8].type", "duplicate"),
    ("namespace type unknown", lambda c: c["linux"]["namespaces"][0].update(type="pids"),
     "$.linux.namespaces[0].type", "one of"),
    ("namespace path relative", lambda c: c["linux"]["namespaces"][1].update(path="netns/a"),
     "$.linux.namespaces[1].path", "absolute"),
    ("idmapping size missing", lambda c: c["linux"]["uidMappings"][0].pop("size"), "$.linux.uidMappings[0].size",
     "required"),
    ("device type x", lambda c: c["linux"]["devices"][0].update(type="x"), "$.linux.devices[0].type", "one of"),
    ("char device without major", lambda c: c["linux"]["devices"][0].pop("major"), "$.linux.devices[0].major",
     "required"),
    ("netDevice name not string", lambda c: c["linux"]["netDevices"]["eth1"].update(name=5),
     "$.linux.netDevices.eth1.name", "string"),
    ("netDevice renamed onto another", lambda c: c["linux"]["netDevices"].update(eth2={"name": "ctr1"}),
     "$.linux.netDevices.eth2", "ctr1"),
    ("netDevice kept name clashes", lambda c: c["linux"]["netDevices"]["eth1"].update(name="dummy0"),
     "$.linux.netDevices.dummy0", "eth1"),
    ("netDevice name too long", lambda c: c["linux"]["netDevices"]["eth1"].update(name="a" * 16),
     "$.linux.netDevices.eth1.name", "15 bytes"),
    ("netDevice name with slash", lambda c: c["linux"]["netDevices"]["eth1"].update(name="a/b"),
     "$.linux.netDevices.eth1.name", "valid interface name"),
    ("netDevice host name with colon", lambda c: c["linux"]["netDevices"].update({"eth0:1": {}}),
     '$.linux.netDevices["eth0:1"]', "valid interface name"),
    ("netDevice empty name", lambda c: c["linux"]["netDevices"]["eth1"].update(name=""),
     "$.linux.netDevices.eth1.name", "empty"),
    ("device rule allow missing", lambda c: c["linux"]["resources"]["devices"][0].pop("allow"),
     "$.linux.resources.devices[0].allow", "required"),
    ("device rule access bad", lambda c: c["linux"]["resources"]["devices"][1].update(access="rwx"),
     "$.linux.resources.devices[1].access", "match"),
    ("memory limit string", lambda c: c["linux"]["resources"]["memory"].update(limit="1G"),
     "$.linux.resources.memory.limit", "integer"),
    ("pids limit missing", lambda c: c["linux"]["resources"]["pids"].clear(), "$.linux.resources.pids.limit",
     "required"),
    ("blockIO weight too big", lambda c: c["linux"]["resources"]["blockIO"].update(weight=70000),
     "$.linux.resources.blockIO.weight", "range"),
    ("weightDevice without weights", lambda c: c["linux"]["resources"]["blockIO"]["weightDevice"][1].pop("weight"),
     "$.linux.resources.blockIO.weightDevice[1]", "weight"),
    ("throttle without rate", lambda c: c["linux"]["resources"]["blockIO"]["throttleReadBpsDevice"][0].pop("rate"),
     "$.linux.resources.blockIO.throttleReadBpsDevice[0].rate", "required"),
    ("hugepage size bad", lambda c: c["linux"]["resources"]["hugepageLimits"][0].update(pageSize="2M"),
     "$.linux.resources.hugepageLimits[0].pageSize", "match"),
    ("rdma entry empty", lambda c: c["linux"]["resources"]["rdma"].update({"mlx4_0": {}}),
     "$.linux.resources.rdma.mlx4_0", "hcaHandles"),
    ("unified value int", lambda c: c["linux"]["resources"]["unified"].update({"pids.max": 5}),
     '$.linux.resources.unified["pids.max"]', "string"),
    ("memBwSchema without MB:", lambda c: c["linux"]["intelRdt"].update(memBwSchema="L3:0=1"),
     "$.linux.intelRdt.memBwSchema", "match"),
    ("schemata a string (pre-1.3 form)", lambda c: c["linux"]["intelRdt"].update(schemata="L3:0=7f0"),
     "$.linux.intelRdt.schemata", "array"),
    ("memBwSchema trailing newline", lambda c: c["linux"]["intelRdt"].update(memBwSchema="MB:0=20\n"),
     "$.linux.intelRdt.memBwSchema", "match"),
    ("schemata entry with newline", lambda c: c["linux"]["intelRdt"].update(schemata=["L3:0=f\nMB:0=1"]),
     "$.linux.intelRdt.schemata[0]", "match"),
    ("schemata entry trailing newline", lambda c: c["linux"]["intelRdt"].update(schemata=["L2:0=f", "L3:0=f\n"]),
     "$.linux.intelRdt.schemata[1]", "match"),
    ("seccomp defaultAction missing", lambda c: c["linux"]["seccomp"].pop("defaultAction"),
     "$.linux.seccomp.defaultAction", "required"),
    ("seccomp action unknown", lambda c: c["linux"]["seccomp"]["syscalls"][0].update(action="SCMP_ACT_MAYBE"),
     "$.linux.seccomp.syscalls[0].action", "one of"),
    ("seccomp names empty", lambda c: c["linux"]["seccomp"]["syscalls"][0].update(names=[]),
     "$.linux.seccomp.syscalls[0].names", "at least 1"),
    ("seccomp arg op unknown", lambda c: c["linux"]["seccomp"]["syscalls"][2]["args"][0].update(op="SCMP_CMP_IN"),
     "$.linux.seccomp.syscalls[2].args[0].op", "one of"),
    ("seccomp flag unknown", lambda c: c["linux"]["seccomp"]["flags"].append("SECCOMP_FILTER_FLAG_NEW_LISTENER"),
     "$.linux.seccomp.flags[2]", "one of"),
    ("seccomp arch unknown", lambda c: c["linux"]["seccomp"]["architectures"].append("SCMP_ARCH_VAX"),
     "$.linux.seccomp.architectures[2]", "one of"),
    ("listenerMetadata without listenerPath", lambda c: c["linux"]["seccomp"].pop("listenerPath"),
     "$.linux.seccomp.listenerMetadata", "listenerPath"),
    ("rootfsPropagation unknown", lambda c: c["linux"].update(rootfsPropagation="rshared"),
     "$.linux.rootfsPropagation", "one of"),
    ("sysctl value int", lambda c: c["linux"]["sysctl"].update({"kernel.shmmax": 1}),
     '$.linux.sysctl["kernel.shmmax"]', "string"),
    ("personality domain missing", lambda c: c["linux"]["personality"].pop("domain"), "$.linux.personality.domain",
     "required"),
    ("memoryPolicy mode unknown", lambda c: c["linux"]["memoryPolicy"].update(mode="MPOL_FAST"),
     "$.linux.memoryPolicy.mode", "one of"),
    ("memoryPolicy flag unknown", lambda c: c["linux"]["memoryPolicy"]["flags"].append("MPOL_F_NODE"),
     "$.linux.memoryPolicy.flags[1]", "one of"),
    ("timeOffset nanosecs negative", lambda c: c["linux"]["timeOffsets"]["monotonic"].update(nanosecs=-1),
     "$.linux.timeOffsets.monotonic.nanosecs", "range"),
]


@pytest.mark.parametrize("name,config", good_configs(), ids=[n for n, _ in good_configs()])
def test_good_configs_are_accepted(name, config):
    before = copy.deepcopy(config)
    validate.validate_config(config)
    assert config == before, "validation must not change the config"


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "1.3.7+build.5"])
def test_supported_oci_versions(version):
    validate.validate_config(dict(MINIMAL, ociVersion=version))


@pytest.mark.parametrize("what,change,path,word", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_names_its_json_path(what, change, path, word):
    config = mutated(KITCHEN_SINK, change)
    with pytest.raises(ConfigError) as raised:
        validate.validate_config(config)
    message = str(raised.value)
    assert message.startswith(f"config.json: {path}: "), message
    assert word in message, message
    assert "\n" not in message
    assert raised.value.exit_code == 1


def test_every_linux_capability_is_known():
    # capability numbers 0..40 (include/uapi/linux/capability.h, CAP_LAST_CAP in Linux 5.9+)
    assert len(validate.CAPABILITIES) == 41 == len(set(validate.CAPABILITIES))
    config = copy.deepcopy(MINIMAL)
    config["process"] = {"cwd": "/", "args": ["sh"], "capabilities": {s: list(validate.CAPABILITIES) for s in
                                                                      validate.CAPABILITY_SETS}}
    validate.validate_config(config)


def test_capabilities_match_the_running_kernel():
    """The list must cover every capability this kernel has (cap_last_cap)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    assert last + 1 <= len(validate.CAPABILITIES)


def test_message_escapes_control_characters_in_names():
    config = mutated(KITCHEN_SINK, lambda c: c["annotations"].update({"evil\nkey": 5}))
    with pytest.raises(ConfigError) as raised:
        validate.validate_config(config)
    assert str(raised.value) == 'config.json: $.annotations["evil\\nkey"]: must be a string'


def test_long_values_are_shortened_in_messages():
    config = mutated(KITCHEN_SINK, lambda c: c["linux"].update(rootfsPropagation="x" * 5000))
    with pytest.raises(ConfigError) as raised:
        validate.validate_config(config)
    assert len(str(raised.value)) < 300


def test_process_json_for_exec():
    validate.validate_process({"cwd": "/", "args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"]}})
    with pytest.raises(ConfigError, match=r"^process.json: \$.capabilities.bounding\[0\]: unknown capability"):
        validate.validate_process({"cwd": "/", "args": ["sh"], "capabilities": {"bounding": ["CAP_NOPE"]}})
    with pytest.raises(ConfigError, match=r"^process.json: \$.cwd: is required$"):
        validate.validate_process({"args": ["sh"]})


@pytest.mark.parametrize("state", GOOD_STATES)
def test_good_states(state):
    validate.validate_state(state)


@pytest.mark.parametrize("state,path", [
    ({"ociVersion": "1.2.0", "id": "c", "status": "running", "bundle": "/b"}, "$.pid"),
    ({"ociVersion": "1.2.0", "id": "c", "status": "exited", "pid": 1, "bundle": "/b"}, "$.status"),
    ({"ociVersion": "1.2.0", "status": "stopped", "bundle": "/b"}, "$.id"),
    ({"ociVersion": "1.2.0", "id": "c", "status": "created", "pid": -1, "bundle": "/b"}, "$.pid"),
])
def test_bad_states(state, path):
    with pytest.raises(ConfigError, match=r"^state: " + path.replace("$", r"\$") + ": "):
        validate.validate_state(state)


@pytest.mark.parametrize("features", GOOD_FEATURES)
def test_good_features(features):
    validate.validate_features(features)


def test_features_need_version_range():
    # runtime-spec schema/test/features/bad/missing-ociVersionMax.json, same idea
    with pytest.raises(ConfigError, match=r"^features: \$.ociVersionMax: is required$"):
        validate.validate_features({"ociVersionMin": "1.0.0"})


def test_runtime_import_does_not_load_jsonschema():
    """The hot path: validating must not import jsonschema (≈100 ms) or anything heavy."""
    code = ("import sys, json\n"
            f"sys.path.insert(0, {REPO!r})\n"
            "from ocirt.spec.validate import validate_config\n"
            "from ocirt.spec.default import default_spec\n"
            "validate_config(default_spec())\n"
            "heavy = sorted(m for m in ('jsonschema', 'referencing', 'rpds', 'attrs') if m in sys.modules)\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("document", [[], None, "config", 1, True])
def test_top_level_must_be_an_object(document):
    with pytest.raises(ConfigError, match=r"^config.json: \$: must be an object$"):
        validate.validate_config(document)


def test_unknown_fields_are_ignored_not_walked():
    # the spec asks runtimes to ignore unknown properties; nested junk there must not matter
    deep = []
    for _ in range(200):
        deep = [deep, {"x": deep}]
    config = dict(MINIMAL, vendorExtension={"deep": deep}, windows={"layerFolders": 5})
    config["linux"] = {"futureFeature": {"a": [1, 2, None]}}
    validate.validate_config(config)
