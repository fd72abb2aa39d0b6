"""The last mile before execve, shared by the container's init and ``exec``.

Order matters: rlimits and oom_score_adj while still privileged, then the
bounding set, the uid/gid switch keeping capabilities, the capability sets,
no_new_privs, and seccomp last (done by the caller).
"""
import os
import stat

from ocirt.errors import ConfigError, OcirtError


def set_rlimits(rlimits, where="process.rlimits"):
    from ocirt.linux import sys as lsys
    seen = set()
    for i, rl in enumerate(rlimits or []):
        name = rl.get("type", "")
        num = getattr(lsys.C, name, None) if name.startswith("RLIMIT_") else None
        if not isinstance(num, int):
            raise ConfigError(f"config.json: {where}[{i}].type: unknown rlimit {name!r}")
        if name in seen:
            raise ConfigError(f"config.json: {where}[{i}].type: duplicate rlimit {name}")
        seen.add(name)
        try:
            lsys.setrlimit(num, _rlim(rl.get("soft")), _rlim(rl.get("hard")))
        except (OSError, OverflowError) as e:
            reason = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e)
            raise OcirtError(f"config.json: {where}[{i}]: cannot set {name} to {rl.get('soft')}:{rl.get('hard')}: "
                             f"{reason}") from None


def _rlim(v):
    """None (unlimited) for a missing, negative or all-ones value."""
    return None if v is None or v >= 2 ** 64 - 1 or v < 0 else v


def set_oom_score_adj(value):
    if value is None:
        return  # unset: MUST NOT change (spec)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        raise OcirtError(f"config.json: process.oomScoreAdj: cannot set {value}: {e.strerror}") from None


def switch_user(user, cap_masks, no_new_privs, in_user_ns=False):
    """Bounding set, setgroups/setresgid/setresuid with KEEPCAPS, then caps."""
    from ocirt.linux import caps
    from ocirt.linux import sys as lsys
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    if cap_masks is not None:
        caps.drop_bounding(cap_masks["bounding"])
    lsys.prctl(lsys.C.PR_SET_KEEPCAPS, 1)
    groups = [int(g) for g in user.get("additionalGids") or []]
    try:
        os.setgroups(groups)
    except PermissionError:
        if not in_user_ns or groups:  # setgroups may be denied in a user ns
            raise OcirtError("process.user.additionalGids: setgroups: operation not permitted") from None
    try:
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise OcirtError(f"process.user: cannot switch to uid {uid} gid {gid}: {e.strerror}") from None
    lsys.prctl(lsys.C.PR_SET_KEEPCAPS, 0)
    if cap_masks is not None:
        caps.apply(cap_masks)
    if no_new_privs:
        lsys.prctl(lsys.C.PR_SET_NO_NEW_PRIVS, 1)
    if "umask" in user and user["umask"] is not None:
        os.umask(int(user["umask"]))


def environment(process, uid):
    env = {}
    for item in process.get("env") or []:
        k, sep, v = item.partition("=")
        if sep:
            env[k] = v
    if "HOME" not in env:
        env["HOME"] = _home_of(uid)
    return env


def _home_of(uid):
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_executable(arg0, env):
    """Resolve args[0] as execve will, with runc's wording (podman maps it to 126/127)."""
    if not arg0:
        raise OcirtError("exec: executable path is empty")
    if "/" in arg0:
        _check_executable(arg0)
        return arg0
    for d in (env.get("PATH") or DEFAULT_PATH).split(":"):
        candidate = os.path.join(d or ".", arg0)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
    raise OcirtError(f'exec: "{arg0}": executable file not found in $PATH')


def _check_executable(path):
    try:
        st = os.stat(path)
    except OSError as e:
        raise OcirtError(f'exec: "{path}": stat {path}: {e.strerror.lower()}') from None
    if stat.S_ISDIR(st.st_mode):
        raise OcirtError(f'exec: "{path}": is a directory (permission denied)')
    if not os.access(path, os.X_OK):
        raise OcirtError(f'exec: "{path}": permission denied')


def chdir_in_root(cwd):
    """chdir without following magic links: a leaked fd path such as
    /proc/self/fd/N cannot put the process outside its root (CVE-2024-21626)."""
    from ocirt.linux import sys as lsys
    if not cwd or not cwd.startswith("/"):
        raise ConfigError(f"config.json: process.cwd: must be an absolute path, got {cwd!r}")
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = lsys.openat2(root, cwd.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY,
                              lsys.C.RESOLVE_IN_ROOT | lsys.C.RESOLVE_NO_MAGICLINKS)
        except FileNotFoundError:
            os.makedirs(cwd, 0o755, exist_ok=True)  # runc creates a missing cwd
            fd = lsys.openat2(root, cwd.lstrip("/"), os.O_PATH | os.O_DIRECTORY,
                              lsys.C.RESOLVE_IN_ROOT | lsys.C.RESOLVE_NO_MAGICLINKS)
        except OSError as e:
            raise OcirtError(f"config.json: process.cwd: {cwd}: {e.strerror}") from None
        os.fchdir(fd)
        os.close(fd)
    finally:
        os.close(root)


def listen_fds_env(env):
    """systemd socket activation passed on: returns how many fds 3.. to keep."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) == os.getpid():
            n = int(os.environ.get("LISTEN_FDS", "0"))
            if n > 0:
                env["LISTEN_FDS"] = str(n)
                env["LISTEN_PID"] = "1"
                return n
    except ValueError:
        pass
    return 0


def seal_fds(keep):
    """Every fd from 3+keep up is close-on-exec: no host fd reaches the container."""
    from ocirt.linux import sys as lsys
    for fd in range(3, 3 + keep):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            raise OcirtError(f"--preserve-fds: fd {fd} is not open") from None
    lsys.close_range_cloexec(3 + keep)


def set_scheduler(sched, where="process.scheduler"):
    """process.scheduler through sched_setattr (SCHED_DEADLINE needs it)."""
    if not sched:
        return
    from ocirt.linux import sys as lsys
    C = lsys.C
    policies = {"SCHED_OTHER": C.SCHED_NORMAL, "SCHED_FIFO": C.SCHED_FIFO, "SCHED_RR": C.SCHED_RR,
                "SCHED_BATCH": C.SCHED_BATCH, "SCHED_ISO": None, "SCHED_IDLE": C.SCHED_IDLE,
                "SCHED_DEADLINE": C.SCHED_DEADLINE}
    flag_bits = {"SCHED_FLAG_RESET_ON_FORK": C.SCHED_FLAG_RESET_ON_FORK, "SCHED_FLAG_RECLAIM": C.SCHED_FLAG_RECLAIM,
                 "SCHED_FLAG_DL_OVERRUN": C.SCHED_FLAG_DL_OVERRUN, "SCHED_FLAG_KEEP_POLICY": C.SCHED_FLAG_KEEP_POLICY,
                 "SCHED_FLAG_KEEP_PARAMS": C.SCHED_FLAG_KEEP_PARAMS,
                 "SCHED_FLAG_UTIL_CLAMP_MIN": C.SCHED_FLAG_UTIL_CLAMP_MIN,
                 "SCHED_FLAG_UTIL_CLAMP_MAX": C.SCHED_FLAG_UTIL_CLAMP_MAX}
    policy = policies.get(sched.get("policy"))
    if policy is None:
        raise ConfigError(f"config.json: {where}.policy: unsupported policy {sched.get('policy')!r}")
    flags = 0
    for i, name in enumerate(sched.get("flags") or []):
        if name not in flag_bits:
            raise ConfigError(f"config.json: {where}.flags[{i}]: unknown flag {name!r}")
        flags |= flag_bits[name]
    try:
        lsys.sched_setattr(policy, flags, sched.get("nice", 0), sched.get("priority", 0), sched.get("runtime", 0),
                           sched.get("deadline", 0), sched.get("period", 0))
    except OSError as e:
        raise OcirtError(f"config.json: {where}: cannot set {sched.get('policy')}: {e.strerror}") from None


def parse_cpu_list(text, where):
    """"0-3,7" -> {0, 1, 2, 3, 7}"""
    cpus = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(f"config.json: {where}: invalid CPU list {text!r}") from None
    return cpus


def set_cpu_affinity(text, where):
    if text:
        try:
            os.sched_setaffinity(0, parse_cpu_list(text, where))
        except OSError as e:
            raise OcirtError(f"config.json: {where}: {e.strerror}") from None


def apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def check_apparmor(profile, where="process.apparmorProfile"):
    """A profile the host cannot apply is an error, never silently dropped."""
    if profile and not apparmor_enabled():
        raise ConfigError(f"config.json: {where}: {profile!r} is set but AppArmor is not enabled on this host")


def set_apparmor_profile(profile):
    """Confine the next execve with ``profile`` (what runc and crun write)."""
    if not profile:
        return
    for attr in ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"):
        try:
            with open(attr, "w") as f:
                f.write(f"exec {profile}")
            return
        except FileNotFoundError:
            continue
        except OSError as e:
            raise OcirtError(f"process.apparmorProfile: cannot apply {profile!r}: {e.strerror}") from None
    raise OcirtError(f"process.apparmorProfile: cannot apply {profile!r}: no AppArmor attribute in /proc")
