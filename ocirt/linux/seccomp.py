"""linux.seccomp through libseccomp: compile a config into a filter, load it.

How libseccomp is reached
-------------------------
* Its *functions* are looked up in ``libseccomp.so.2`` at run time (cffi ABI
  mode: ``_cffi_backend.load_library`` + ``load_function``), and only when a
  config has ``linux.seccomp``.  ocirt itself never links against it, so a host
  without the library runs every other container and gets one clear error for
  a seccomp one.
* Their *signatures* are parsed by the compiled ``ocirt.linux._libc`` module's
  own type parser.  ``FFI().cdef()`` would do the same job through pycparser,
  which costs about 35 ms per ``create`` here (measured), and podman passes a
  seccomp profile to every container.
* Every *constant* (SCMP_ACT_*, SCMP_CMP_*, SCMP_FLTATR_*, SECCOMP_*) and the
  ``struct scmp_arg_cmp`` layout come from <seccomp.h> / <linux/seccomp.h>
  through the API-mode build (``CDEF_SECCOMP`` in ``_libc_build.py``), so no
  number is copied by hand.  Architecture tokens and syscall numbers are
  resolved by libseccomp itself (``seccomp_arch_resolve_name``,
  ``seccomp_syscall_resolve_name``).

Semantics follow the runtime-spec (config-linux.md "Seccomp") and, where the
spec is silent, what runc does, so profiles written for runc behave the same:
unknown syscall names are skipped, a rule whose action equals the default
action is dropped, several conditions on the same argument index become one
rule per condition (libseccomp refuses them in a single rule), and
SCMP_ACT_ERRNO / SCMP_ACT_TRACE without ``errnoRet`` return EPERM.

When to call ``load`` (contract with the init)
----------------------------------------------
``load`` never sets no_new_privs itself (SCMP_FLTATR_CTL_NNP is always 0): the
init applies ``process.noNewPrivileges`` with prctl before calling it.
The kernel accepts a filter from a thread that either has no_new_privs or has
CAP_SYS_ADMIN in its user namespace.  Hence:

* noNewPrivileges true, or CAP_SYS_ADMIN kept in the effective set: call
  ``load`` as the very last step before execve, after setuid/setgroups and
  capabilities.
* noNewPrivileges false and CAP_SYS_ADMIN dropped (the usual docker/podman
  profile with default capabilities): call ``load`` *before* dropping
  capabilities, as runc and crun do; ``load_before_capabilities(process)``
  says which case applies.  Whatever the init does after ``load`` goes
  through the filter: keep it to setgroups/setresuid/capset/prctl, closing
  fds and execve, and never call getcwd there (runc's post-load getcwd check
  is why it fails runtime-tools' ``linux_seccomp``).

With SCMP_ACT_NOTIFY rules ``load`` returns the listener fd (close-on-exec).
The init cannot reach ``listenerPath`` (a host path) after pivot_root: pass the
fd to the runtime side over the init's sync socket and call ``send_listener``
there.
"""
import errno
import os

from ocirt.errors import ConfigError, OcirtError

LIBRARY = "libseccomp.so.2"

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
# The spec's list (libseccomp 2.5 names) plus later additions; `features`
# reports only those the loaded libseccomp resolves.
ARCHITECTURES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                 "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
                 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                 "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
                 "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
                 "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")
# seccomp(2) flag -> the libseccomp attribute that makes libseccomp pass it.
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": "SCMP_FLTATR_CTL_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG": "SCMP_FLTATR_CTL_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": "SCMP_FLTATR_CTL_SSB",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": "OCIRT_SCMP_FLTATR_CTL_WAITKILL",
}
# Syscalls the init may still make after `load` and before the listener has
# the notify fd (`send_listener` runs there: socket, connect, sendmsg; the
# sync channel: sendto, write): a NOTIFY rule on them would block the
# container forever (runc refuses `write` for the same reason).
_NOTIFY_REFUSED = ("socket", "connect", "sendmsg", "sendto", "write")

_MAX_ARGS = 6          # syscall arguments a seccomp filter can inspect
_U64 = (1 << 64) - 1

_SIGNATURES = {
    "seccomp_version": "struct scmp_version *(*)(void)",
    "seccomp_init": "void *(*)(uint32_t)",
    "seccomp_release": "void(*)(void *)",
    "seccomp_arch_resolve_name": "uint32_t(*)(char *)",
    "seccomp_arch_add": "int(*)(void *, uint32_t)",
    "seccomp_attr_set": "int(*)(void *, enum scmp_filter_attr, uint32_t)",
    "seccomp_syscall_resolve_name": "int(*)(char *)",
    "seccomp_rule_add_array": "int(*)(void *, uint32_t, int, unsigned int, struct scmp_arg_cmp *)",
    "seccomp_load": "int(*)(void *)",
    "seccomp_notify_fd": "int(*)(void *)",
}


class _Libseccomp:
    """The few libseccomp entry points ocirt uses, as cffi function pointers."""

    def __init__(self, ffi, handle):
        for name, signature in _SIGNATURES.items():
            try:
                setattr(self, name, handle.load_function(ffi.typeof(signature), name))
            except AttributeError:
                raise OcirtError(f"seccomp requested but {LIBRARY} is too old (no {name})") from None
        v = self.seccomp_version()
        self.version = (v.major, v.minor, v.micro)
        self._handle = handle   # keeps the library mapped


_loaded = {}


def _binding():
    """(ffi, constants, libseccomp); raises OcirtError if libseccomp is missing."""
    if "lib" not in _loaded:
        # The loader cffi's own ffi.dlopen() is built on; the compiled ffi
        # parses the signatures, so pycparser is never imported.
        import _cffi_backend
        from ocirt.linux._libc import ffi, lib as consts
        try:
            handle = _cffi_backend.load_library(LIBRARY)
        except OSError:
            raise OcirtError(f"seccomp requested but {LIBRARY} is not installed") from None
        _loaded.update(ffi=ffi, consts=consts, lib=_Libseccomp(ffi, handle))
    return _loaded["ffi"], _loaded["consts"], _loaded["lib"]


def library_version():
    """"2.5.4" for the libseccomp ocirt would use, None when it is missing."""
    try:
        return "%d.%d.%d" % _binding()[2].version
    except OcirtError:
        return None


class Filter:
    """A compiled filter: libseccomp context plus what `load`/the core need."""

    __slots__ = ("_ctx", "_lib", "uses_notify", "listener_path", "listener_metadata")

    def __init__(self, ctx, lib, uses_notify, listener_path, listener_metadata):
        self._ctx, self._lib = ctx, lib
        self.uses_notify = uses_notify
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata


# --- validation helpers ------------------------------------------------------

def _uint(value, field, maximum):
    if type(value) is not int or not 0 <= value <= maximum:
        raise ConfigError(f"{field}: must be an integer between 0 and {maximum}, not {value!r}")
    return value


def _strings(value, field, allow_empty=True):
    if not isinstance(value, list) or (not allow_empty and not value):
        raise ConfigError(f"{field}: must be {'an' if allow_empty else 'a non-empty'} array of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item or "\0" in item:
            raise ConfigError(f"{field}[{i}]: must be a non-empty string without NUL, not {item!r}")
    return value


def _present(cfg, key):
    """An optional array field: absent and null mean empty."""
    value = cfg.get(key)
    return [] if value is None else value


def _action(consts, name, errno_ret, field, errno_field):
    """The libseccomp action value for an OCI action name (+ errnoRet)."""
    if name not in ACTIONS:
        raise ConfigError(f"{field}: unknown action {name}" if isinstance(name, str)
                          else f"{field}: must be a string, not {name!r}")
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        # SCMP_ACT_ERRNO(x)/SCMP_ACT_TRACE(x) keep 16 bits of x.
        code = errno.EPERM if errno_ret is None else _uint(errno_ret, errno_field, 0xFFFF)
        make = consts.ocirt_scmp_act_errno if name == "SCMP_ACT_ERRNO" else consts.ocirt_scmp_act_trace
        return make(code)
    if errno_ret is not None:
        # config-linux.md: "When the action doesn't support an errno, the
        # runtime MUST print and error and fail."
        raise ConfigError(f"{errno_field}: {name} does not take an errno return code")
    return getattr(consts, name)


def _conditions(consts, args, field):
    """[(index, op, value, valueTwo)] checked; the op is the SCMP_CMP_* value."""
    if args is None:
        return []
    if not isinstance(args, list):
        raise ConfigError(f"{field}: must be an array")
    out = []
    for k, arg in enumerate(args):
        f = f"{field}[{k}]"
        if not isinstance(arg, dict):
            raise ConfigError(f"{f}: must be an object")
        for key in ("index", "value", "op"):
            if key not in arg:
                raise ConfigError(f"{f}.{key}: required")
        index = _uint(arg["index"], f"{f}.index", _MAX_ARGS - 1)
        value = _uint(arg["value"], f"{f}.value", _U64)
        value_two = _uint(arg.get("valueTwo", 0), f"{f}.valueTwo", _U64)
        op = arg["op"]
        if op not in OPERATORS:
            raise ConfigError(f"{f}.op: unknown operator {op}" if isinstance(op, str)
                              else f"{f}.op: must be a string, not {op!r}")
        out.append((index, getattr(consts, op), value, value_two))
    return out


def _check_rc(rc, what):
    if rc < 0:
        raise OcirtError(f"{what}: {os.strerror(-rc)}")


# --- the interface -----------------------------------------------------------

def compile(seccomp_cfg):
    """Validate ``linux.seccomp`` and build the filter (not loaded yet).

    Call it where libseccomp.so.2 is reachable (runtime side, or the init
    before pivot_root); the returned Filter survives fork.
    """
    cfg = seccomp_cfg
    if not isinstance(cfg, dict):
        raise ConfigError("linux.seccomp: must be an object")
    ffi, consts, lib = _binding()
    from ocirt import log

    if "defaultAction" not in cfg:
        raise ConfigError("linux.seccomp.defaultAction: required")
    if cfg["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise ConfigError("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
    default = _action(consts, cfg["defaultAction"], cfg.get("defaultErrnoRet"),
                      "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet")

    listener_path = cfg.get("listenerPath")
    metadata = cfg.get("listenerMetadata")
    if listener_path is not None and (not isinstance(listener_path, str) or not listener_path
                                      or "\0" in listener_path):
        raise ConfigError(f"linux.seccomp.listenerPath: must be a non-empty path, not {listener_path!r}")
    if metadata is not None:
        if not listener_path:
            raise ConfigError("linux.seccomp.listenerMetadata: allowed only together with listenerPath")
        if not isinstance(metadata, str):
            raise ConfigError(f"linux.seccomp.listenerMetadata: must be a string, not {metadata!r}")

    arches = _strings(_present(cfg, "architectures"), "linux.seccomp.architectures")
    flags = _strings(_present(cfg, "flags"), "linux.seccomp.flags")
    syscalls = _present(cfg, "syscalls")
    if not isinstance(syscalls, list):
        raise ConfigError("linux.seccomp.syscalls: must be an array")

    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise OcirtError("linux.seccomp.defaultAction: libseccomp refused "
                         f"{cfg['defaultAction']} (kernel or libseccomp too old?)")
    ctx = ffi.gc(ctx, lib.seccomp_release)

    # NNP is the init's business (process.noNewPrivileges); real errnos from
    # seccomp_load instead of libseccomp's blanket ECANCELED.
    _check_rc(lib.seccomp_attr_set(ctx, consts.SCMP_FLTATR_CTL_NNP, 0), "seccomp: SCMP_FLTATR_CTL_NNP")
    _check_rc(lib.seccomp_attr_set(ctx, consts.SCMP_FLTATR_API_SYSRAWRC, 1), "seccomp: SCMP_FLTATR_API_SYSRAWRC")

    for i, name in enumerate(arches):
        field = f"linux.seccomp.architectures[{i}]"
        token = 0
        if name.startswith("SCMP_ARCH_"):
            token = lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_"):].lower().encode())
        if not token:
            raise ConfigError(f"{field}: unknown architecture {name}")
        rc = lib.seccomp_arch_add(ctx, token)
        if rc != -errno.EEXIST:          # the native arch is always in the filter
            _check_rc(rc, f"{field}: cannot add {name}")

    for i, name in enumerate(flags):
        field = f"linux.seccomp.flags[{i}]"
        if name not in FLAGS:
            raise ConfigError(f"{field}: unknown flag {name}")
        attr = getattr(consts, FLAGS[name])
        if not _library_can_set(consts, lib, FLAGS[name]):
            raise OcirtError(f"{field}: {name} needs libseccomp >= 2.6.0 (built against "
                             f"{consts.SCMP_VER_MAJOR}.{consts.SCMP_VER_MINOR}.{consts.SCMP_VER_MICRO}, "
                             "running %d.%d.%d)" % lib.version)
        _check_rc(lib.seccomp_attr_set(ctx, attr, 1), f"{field}: {name} is not supported here")

    uses_notify = False
    for i, rule in enumerate(syscalls):
        field = f"linux.seccomp.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{field}: must be an object")
        if "names" not in rule:
            raise ConfigError(f"{field}.names: required")
        names = _strings(rule["names"], f"{field}.names", allow_empty=False)
        if "action" not in rule:
            raise ConfigError(f"{field}.action: required")
        action = _action(consts, rule["action"], rule.get("errnoRet"), f"{field}.action", f"{field}.errnoRet")
        conditions = _conditions(consts, rule.get("args"), f"{field}.args")
        if rule["action"] == "SCMP_ACT_NOTIFY":
            uses_notify = True
            for j, name in enumerate(names):
                if name in _NOTIFY_REFUSED:
                    raise ConfigError(f"{field}.names[{j}]: SCMP_ACT_NOTIFY cannot be used for {name}: "
                                      "ocirt needs it to hand the notify fd over")
        if action == default:
            log.debug(f"seccomp: {field} has the default action, skipped")
            continue
        indexes = [c[0] for c in conditions]
        if len(set(indexes)) == len(indexes):
            groups = [conditions]
        else:   # libseccomp refuses two comparisons of one argument in a rule
            groups = [[c] for c in conditions]
        arrays = [(len(g), ffi.new("struct scmp_arg_cmp[]", g) if g else ffi.NULL) for g in groups]
        for j, name in enumerate(names):
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == consts.__NR_SCMP_ERROR:
                log.debug(f"seccomp: unknown syscall {name!r} in {field}.names[{j}], skipped")
                continue
            for count, array in arrays:
                _check_rc(lib.seccomp_rule_add_array(ctx, action, nr, count, array),
                          f"{field}.names[{j}]: cannot add a rule for {name}")

    if uses_notify and not listener_path:
        raise ConfigError("linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY")
    return Filter(ctx, lib, uses_notify, listener_path if uses_notify else None, metadata)


def load(flt):
    """Install ``flt`` in the calling process; returns the notify fd or None.

    Nothing here may touch the filesystem or import modules: from the
    moment seccomp_load returns, every syscall goes through the filter.
    """
    lib = flt._lib
    rc = lib.seccomp_load(flt._ctx)
    if rc == -errno.EACCES:
        raise OcirtError("seccomp: the kernel refused the filter: without noNewPrivileges it must be loaded "
                         "while CAP_SYS_ADMIN is still effective (load before dropping capabilities)")
    if rc < 0:
        raise OcirtError(f"seccomp: loading the filter failed: {os.strerror(-rc)}")
    if not flt.uses_notify:
        return None
    fd = lib.seccomp_notify_fd(flt._ctx)
    if fd < 0:
        raise OcirtError(f"seccomp: no notify fd after loading the filter: {os.strerror(-fd)}")
    return fd


def load_before_capabilities(process):
    """True when the filter must be loaded before capabilities are dropped.

    That is when no_new_privs stays off and CAP_SYS_ADMIN is not in the final
    effective set: the kernel then accepts the filter only while the init
    still holds CAP_SYS_ADMIN.
    """
    process = process or {}
    if process.get("noNewPrivileges"):
        return False
    effective = (process.get("capabilities") or {}).get("effective") or []
    return "CAP_SYS_ADMIN" not in effective


def open_listener(path):
    """listenerPath is a host path: opened (O_PATH) while the runtime still
    sees the host, and reached from inside the container as /proc/self/fd/N."""
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise OcirtError(f"linux.seccomp.listenerPath: {path}: {e.strerror}") from None


def load_and_hand_over(flt, listener_path=None, state=None, metadata=None):
    """Load ``flt``; with a listener, send it the notify fd and ``state``
    (config-linux.md "Seccomp").  ``state`` is computed by the caller before
    the filter is in place."""
    notify_fd = load(flt)
    if notify_fd is not None and listener_path:
        send_listener(listener_path, state, notify_fd, metadata)


def send_listener(path, state, notify_fd, metadata=None):
    """Send the container process state and the notify fd to ``listenerPath``.

    One connection, one JSON document ({ociVersion, fds, pid, metadata,
    state}), the fd in SCM_RIGHTS of the first sendmsg, then close
    (config-linux.md "The Container Process State").  ``state`` is the
    container state; ``pid`` is taken from it.  It may run in the init right
    after ``load``: ocirt.jsonio and socket must already be imported there (the init preloads them).
    """
    from ocirt import jsonio
    import socket
    from ocirt import OCI_VERSION

    # Only the runtime-spec state fields (runtime.md "State"): agents may
    # decode it strictly, and ocirt's stored state carries more.
    oci_state = {k: state[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations") if k in state}
    message = {"ociVersion": state.get("ociVersion", OCI_VERSION), "fds": ["seccompFd"],
               "pid": state["pid"], "state": oci_state}
    if metadata:
        message["metadata"] = metadata
    data = jsonio.dumps(message).encode()
    try:
        # Blocking on purpose: this may run under the filter just loaded, so
        # no timeout (fcntl/poll) beyond socket, connect, sendmsg and close.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sent = socket.send_fds(sock, [data], [notify_fd])
            if sent < len(data):
                sock.sendall(data[sent:])
    except OSError as e:
        raise OcirtError(f"linux.seccomp.listenerPath: sending the seccomp fd to {path} failed: "
                         f"{e.strerror or e}") from None


def _library_can_set(consts, lib, attr_name):
    """SCMP_FLTATR_CTL_WAITKILL exists from libseccomp 2.6.0, in headers and library."""
    if attr_name == "OCIRT_SCMP_FLTATR_CTL_WAITKILL":
        return consts.OCIRT_SCMP_FLTATR_CTL_WAITKILL >= 0 and lib.version >= (2, 6, 0)
    return True


def _kernel_accepts(consts, ffi, flag):
    """seccomp(SET_MODE_FILTER, flag, NULL): EFAULT means the flag is known."""
    rc = consts.ocirt_seccomp(consts.SECCOMP_SET_MODE_FILTER, flag, ffi.NULL)
    return rc < 0 and ffi.errno == errno.EFAULT


def features():
    """The ``linux.seccomp`` object of ``ocirt features`` (features-linux.md)."""
    try:
        ffi, consts, lib = _binding()
    except OcirtError:
        return {"enabled": False}
    supported = []
    for name, attr in FLAGS.items():
        if not _library_can_set(consts, lib, attr):
            continue
        if _kernel_accepts(consts, ffi, getattr(consts, name)):
            supported.append(name)
    return {
        "enabled": True,
        "actions": list(ACTIONS),
        "operators": list(OPERATORS),
        "archs": [a for a in ARCHITECTURES
                  if lib.seccomp_arch_resolve_name(a[len("SCMP_ARCH_"):].lower().encode())],
        "knownFlags": list(FLAGS),
        "supportedFlags": supported,
    }
