"""The krun handler: the container's init becomes a libkrun microVM (or TEE).

Process model (reference: libkrun-and-krun-handler.md §0, §5):

* ``check`` (runtime side, before any fork) validates the annotations and the
  TEE config, finds /dev/kvm (/dev/sev) and loads the library, so every
  user-causable failure is one line printed by ``create``.
* ``before_pivot`` (init, mounts done, host paths still visible) creates the
  libkrun context - libkrun dlopens libkrunfw right then - and writes
  ``<rootfs>/.krun_config.json``, the process description the guest init reads.
* ``enter`` (init, after pivot_root and ``start``) configures the context with
  container paths and calls ``krun_start_enter``, which never returns on
  success: the init pid *is* the VMM, so exit codes, kill, state and delete
  work as for any container.  Nothing may be imported after pivot_root (the
  host's Python library is gone), so ``before_pivot`` imports it all.
"""
import json
import os

from ocirt.errors import ConfigError, OcirtError
from ocirt.handlers import TEE_CONFIG_NAME, VARIANT_NAMES, libkrun

KRUN_CONFIG_NAME = ".krun_config.json"
ROOT_DISK = "/disk.img"                 # the encrypted root of a mkcw image (confidential-workloads.md §2)
VIRTIOFS_ROOT_TAG = "/dev/root"         # KRUN_FS_ROOT_TAG
VIRTIOFS_SHM_SIZE = 512 << 20           # crun's default DAX window (§4.3)
DEFAULT_MAX_CPUS = 16                   # crun: min(affinity, 16)
DEFAULT_RAM_MIB = 1024
MIN_RAM_MIB = 129                       # crun silently ignores krun.ram_mib <= 128; we refuse it
TDX_MAX_CPUS, TDX_MAX_RAM_MIB = 1, 3072  # libkrun README TDX limits (§2)
MAX_TEE_CONFIG_BYTES = 1 << 20
# libkrun puts every env entry on the kernel cmdline, at most 64 KiB on x86_64
# (§3.7); keep room for the rest of the line.
MAX_CMDLINE_ENV_BYTES = 60 * 1024
LOG_LEVEL_ERROR = 1

TEE_KINDS = {"snp": "sev", "sev": "sev", "tdx": "tdx"}   # krun-sev.json "tee" -> library variant
DEVICES = {None: ("/dev/kvm",), "sev": ("/dev/kvm", "/dev/sev"), "tdx": ("/dev/kvm",)}
UNSUPPORTED_ANNOTATIONS = ("krun.gpu_flags", "krun.use_passt")


class KrunHandler:
    def __init__(self, variant=None):
        self.variant = variant
        self.name = VARIANT_NAMES.get(variant, "krun")
        self.settings = None
        self._lib = None
        self._libc = None
        self._ctx = None
        self._prepared = None
        self._keep_alive = []

    # -- runtime side --------------------------------------------------------
    def check(self, config, rootfs):
        namespaces = {ns.get("type") for ns in (config.get("linux") or {}).get("namespaces") or []}
        if "mount" not in namespaces:
            # without one the "container root" shared with the guest would be the host's /
            raise ConfigError(f"config.json: linux.namespaces: the {self.name} handler needs a mount namespace")
        self.settings = vm_settings(config, rootfs, self.variant)
        for dev in DEVICES[self.variant]:
            _check_device(dev, self.name)
        lib = self._load()
        max_cpus = lib.call("krun_get_max_vcpus") if lib.has("krun_get_max_vcpus") else None
        if max_cpus and self.settings["cpus"] > max_cpus:
            raise ConfigError(f"{self.name}: {self.settings['cpus']} vCPUs requested, libkrun allows at most {max_cpus}")
        if self.variant is None:
            if not (lib.has("krun_add_virtiofs2") or lib.has("krun_set_root")):
                raise OcirtError(f"{lib.soname} can share no root filesystem (no krun_add_virtiofs2 or krun_set_root)")
            if not (config.get("process") or {}).get("args"):
                raise ConfigError("config.json: process.args: the krun handler needs a command for the guest")
            guest_env_and_rlimits(config)   # fail here, not in the init
        else:
            _check_root_disk(rootfs)
            if not (lib.has("krun_set_root_disk") or lib.has("krun_add_disk")):
                raise OcirtError(f"{lib.soname} cannot attach {ROOT_DISK} (no krun_set_root_disk or krun_add_disk)")
        if self.settings["nested_virt"] and not lib.has("krun_set_nested_virt"):
            raise OcirtError(f"krun.nested_virt: {lib.soname} has no krun_set_nested_virt (needs libkrun >= 1.11)")

    def extra_devices(self, config):
        """/dev/kvm (and /dev/sev) as linux.devices entries, numbers read from the host."""
        listed = {d.get("path") for d in (config.get("linux") or {}).get("devices") or []}
        devices = []
        for path in DEVICES[self.variant]:
            if path in listed:
                continue
            st = os.stat(path)
            devices.append({"path": path, "type": "c", "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                            "fileMode": 0o666, "uid": 0, "gid": 0})
        return devices

    def exec_refusal(self):
        from ocirt import handlers
        return handlers.exec_refusal(self.name)

    # -- container init, before pivot_root -----------------------------------
    def before_pivot(self, config, rootfs):
        if self.settings is None:   # the core re-selected the handler in a fresh process
            self.settings = vm_settings(config, rootfs, self.variant)
        if self.variant is None and "krun.cpus" not in (config.get("annotations") or {}):
            # As crun: the affinity of the container's own process, now inside its cpuset.
            self.settings["cpus"] = default_cpus()
        lib = self._load()
        from ocirt.linux._libc import lib as libc   # enter() needs it after pivot_root
        self._libc = libc
        self._ctx = lib.call("krun_create_ctx")
        if self.variant is None:
            write_krun_config(rootfs, config)
        self._prepared = self._prepare(config)

    def _prepare(self, config):
        """Every string array libkrun will read, built now and kept alive until krun_start_enter."""
        if self.variant is not None:
            # A TEE boots /disk.img; the stub process.args must not reach it,
            # and an explicit empty env keeps the host environment out.
            return {"env": self._array([]), "rlimits": None}
        env, rlimits = guest_env_and_rlimits(config)
        return {"env": self._array(env), "rlimits": self._array(rlimits) if rlimits else None}

    def _array(self, items):
        array, owned = self._lib.strings(items)
        self._keep_alive.append(owned)
        return array

    # -- container init, after pivot_root: replaces execve -------------------
    def enter(self, config, process):
        lib, ctx, s = self._lib, self._ctx, self.settings
        if lib.has("krun_set_log_level"):
            lib.call("krun_set_log_level", LOG_LEVEL_ERROR)
        lib.call("krun_set_vm_config", ctx, s["cpus"], s["ram_mib"])
        if s["nested_virt"]:
            lib.call("krun_set_nested_virt", ctx, True)
        if self.variant is None:
            if lib.has("krun_add_virtiofs2"):
                lib.call("krun_add_virtiofs2", ctx, VIRTIOFS_ROOT_TAG.encode(), b"/", VIRTIOFS_SHM_SIZE)
            else:   # libkrun < 1.8
                lib.call("krun_set_root", ctx, b"/")
        else:
            if lib.has("krun_set_root_disk"):
                lib.call("krun_set_root_disk", ctx, ROOT_DISK.encode())
            else:   # the deprecated call is gone (libkrun 2.0)
                lib.call("krun_add_disk", ctx, b"root", ROOT_DISK.encode(), False)
            lib.call("krun_set_tee_config_file", ctx, b"/" + TEE_CONFIG_NAME.encode())
        lib.call("krun_set_env", ctx, self._prepared["env"])
        if self._prepared["rlimits"] is not None:
            lib.call("krun_set_rlimits", ctx, self._prepared["rlimits"])
        if self._libc.ocirt_krun_poweroff_on_stop_signals() < 0:
            raise OcirtError("cannot install the SIGTERM/SIGINT power-off handler")
        lib.call("krun_start_enter", ctx)
        raise OcirtError("krun_start_enter returned without an error code")   # never on success

    def _load(self):
        if self._lib is None:
            try:
                self._lib = libkrun.load(self.variant)
            except libkrun.LibraryMissing as exc:
                raise OcirtError(f"{self.name}: {exc}; install libkrun{_suffix(self.variant)} "
                                 f"(soname {libkrun.SONAMES[self.variant]})") from None
            except OcirtError as exc:
                raise OcirtError(f"{self.name}: {exc}") from None
            self._check_tee_support(self._lib)
        return self._lib

    def _check_tee_support(self, lib):
        if self.variant is None:
            return
        feature = libkrun.FEATURE_AMD_SEV if self.variant == "sev" else libkrun.FEATURE_INTEL_TDX
        supported = lib.has_feature(feature)
        if supported is None:   # before krun_has_feature: only TEE builds export this symbol
            supported = lib.has("krun_set_tee_config_file")
        if not supported:
            raise OcirtError(f"{self.name}: {lib.soname} was not built with {self.variant.upper()} support")


def _suffix(variant):
    return f"-{variant}" if variant else ""


def _check_root_disk(rootfs):
    import stat
    where = rootfs.rstrip("/") + ROOT_DISK
    try:
        fd = open_in_root(rootfs, ROOT_DISK, os.O_RDONLY)
    except OSError as exc:
        raise OcirtError(f"{where}: {exc.strerror}: a TEE container boots the image's encrypted disk") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OcirtError(f"{where}: not a regular file")
    finally:
        os.close(fd)


def _check_device(path, handler_name):
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise OcirtError(f"{handler_name}: {path} unavailable: {exc.strerror}") from None
    os.close(fd)


# -- configuration mapping (pure; unit-tested directly) ----------------------
def _int_annotation(annotations, key, low, high):
    value = annotations.get(key)
    if value is None:
        return None
    if not (isinstance(value, str) and value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ConfigError(f"config.json: annotations.{key}: {value!r} is not an integer in [{low}, {high}]")
    return int(value)


def default_cpus():
    try:
        return max(1, min(len(os.sched_getaffinity(0)), DEFAULT_MAX_CPUS))
    except OSError:
        return 1


def memory_limit_mib(config):
    limit = (((config.get("linux") or {}).get("resources") or {}).get("memory") or {}).get("limit")
    if isinstance(limit, int) and limit > 0:
        return limit >> 20 or None
    return None


def vm_settings(config, rootfs, variant):
    """vCPUs, RAM and nested virtualisation from the annotations (crun §4.3) or the TEE config."""
    annotations = config.get("annotations") or {}
    for key in UNSUPPORTED_ANNOTATIONS:
        if key in annotations:
            raise ConfigError(f"config.json: annotations.{key}: not supported by ocirt's krun handler")
    cpus = _int_annotation(annotations, "krun.cpus", 1, 255)
    ram_mib = _int_annotation(annotations, "krun.ram_mib", MIN_RAM_MIB, 0xFFFFFFFF)
    nested = _int_annotation(annotations, "krun.nested_virt", 0, 0x7FFFFFFF)
    if variant is None:
        return {"cpus": cpus or default_cpus(),
                "ram_mib": ram_mib or memory_limit_mib(config) or DEFAULT_RAM_MIB,
                "nested_virt": bool(nested)}
    if nested:
        raise ConfigError("config.json: annotations.krun.nested_virt: not available inside a TEE")
    tee = validate_tee_config(read_tee_config(rootfs), variant)
    # The TEE config's cpus/ram_mib override krun_set_vm_config and are
    # measured: a different annotation would be silently ignored, so refuse it.
    for key, wanted in (("cpus", cpus), ("ram_mib", ram_mib)):
        if wanted is not None and wanted != tee[key]:
            raise ConfigError(f"config.json: annotations.krun.{key}={wanted} contradicts {key}={tee[key]} "
                              f"in /{TEE_CONFIG_NAME} (which is measured)")
    return {"cpus": tee["cpus"], "ram_mib": tee["ram_mib"], "nested_virt": False, "tee": tee["tee"]}


def read_tee_config(rootfs):
    """/krun-sev.json of the image, resolved inside the rootfs (symlinks cannot leave it)."""
    where = os.path.join(rootfs, TEE_CONFIG_NAME)
    try:
        fd = open_in_root(rootfs, TEE_CONFIG_NAME, os.O_RDONLY)
    except OSError as exc:
        raise OcirtError(f"{where}: {exc.strerror}: a TEE container needs the image's TEE config") from None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_TEE_CONFIG_BYTES + 1)
    except OSError as exc:
        raise OcirtError(f"{where}: {exc.strerror}") from None
    if len(data) > MAX_TEE_CONFIG_BYTES:
        raise OcirtError(f"{where}: larger than {MAX_TEE_CONFIG_BYTES} bytes")
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise OcirtError(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise OcirtError(f"{where}: not a JSON object")
    return doc


def validate_tee_config(doc, variant):
    """Check the fields libkrun's TeeConfig reads (confidential-workloads.md §3)."""
    where = f"/{TEE_CONFIG_NAME}"
    tee = doc.get("tee")
    if tee not in TEE_KINDS:
        raise OcirtError(f"{where}: tee: {tee!r} is not one of {', '.join(TEE_KINDS)}")
    if TEE_KINDS[tee] != variant:
        raise OcirtError(f"{where}: tee {tee!r} needs handler {VARIANT_NAMES[TEE_KINDS[tee]]}, "
                         f"not {VARIANT_NAMES[variant]}")
    for key, high in (("cpus", 255), ("ram_mib", 0xFFFFFFFF)):
        value = doc.get(key)
        if type(value) is not int or not 1 <= value <= high:
            raise OcirtError(f"{where}: {key}: {value!r} is not an integer in [1, {high}]")
    for key in ("tee_data", "workload_id", "attestation_url"):
        if not isinstance(doc.get(key, ""), str):
            raise OcirtError(f"{where}: {key}: must be a string")
    if variant == "tdx" and (doc["cpus"] > TDX_MAX_CPUS or doc["ram_mib"] > TDX_MAX_RAM_MIB):
        raise OcirtError(f"{where}: libkrun TDX guests allow at most {TDX_MAX_CPUS} vCPU and "
                         f"{TDX_MAX_RAM_MIB} MiB (cpus={doc['cpus']}, ram_mib={doc['ram_mib']})")
    return doc


def guest_env_and_rlimits(config):
    """process.env for krun_set_env and process.rlimits for krun_set_rlimits, checked."""
    process = config.get("process") or {}
    env = list(process.get("env") or [])
    for i, entry in enumerate(env):
        if not isinstance(entry, str) or "\0" in entry:
            raise ConfigError(f"config.json: process.env[{i}]: must be a string without NUL")
    if sum(len(e.encode()) + 3 for e in env) > MAX_CMDLINE_ENV_BYTES:
        raise ConfigError(f"config.json: process.env: over {MAX_CMDLINE_ENV_BYTES} bytes, more than the "
                          "libkrun kernel command line can carry")
    return env, rlimit_strings(process.get("rlimits") or [])


def rlimit_strings(rlimits):
    """process.rlimits as krun_set_rlimits entries "ID=CUR:MAX" (numeric ids, §3.7)."""
    import resource
    out = []
    for i, rl in enumerate(rlimits):
        name = rl.get("type") if isinstance(rl, dict) else None
        resource_id = getattr(resource, name, None) if isinstance(name, str) and name.startswith("RLIMIT_") else None
        if not isinstance(resource_id, int):
            raise ConfigError(f"config.json: process.rlimits[{i}].type: unknown rlimit {name!r}")
        soft, hard = rl.get("soft"), rl.get("hard")
        if type(soft) is not int or type(hard) is not int or not 0 <= soft <= hard < 1 << 64:
            raise ConfigError(f"config.json: process.rlimits[{i}]: soft/hard must be integers with soft <= hard")
        out.append(f"{resource_id}={soft}:{hard}")
    return out


def guest_config(config):
    """What the guest init reads from /.krun_config.json (§4.6): the process and tmpfs mounts.

    Only these parts of config.json are written: the file sits in the guest's
    root, and hook paths, bind sources and annotations are host details.
    """
    process = config.get("process") or {}
    return {
        "ociVersion": config.get("ociVersion"),
        "process": {k: process[k] for k in ("terminal", "user", "args", "env", "cwd", "rlimits") if k in process},
        **({"hostname": config["hostname"]} if config.get("hostname") else {}),
        "mounts": [m for m in config.get("mounts") or [] if m.get("type") == "tmpfs"],
    }


def write_krun_config(rootfs, config):
    """Create <rootfs>/.krun_config.json (0444) without following any link the image planted.

    The rootfs is the image's: a symlink or hard link at that name must not
    redirect our write to a host file (CVE-2025-24965).  The old entry is
    unlinked and a new inode made with O_CREAT|O_EXCL|O_NOFOLLOW relative to a
    directory fd of the rootfs, so only a plain new file is ever written.
    """
    data = json.dumps(guest_config(config), separators=(",", ":")).encode()
    where = os.path.join(rootfs, KRUN_CONFIG_NAME)
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OcirtError(f"{rootfs}: {exc.strerror}") from None
    try:
        try:
            os.unlink(KRUN_CONFIG_NAME, dir_fd=root_fd)
        except FileNotFoundError:
            pass
        fd = os.open(KRUN_CONFIG_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o444, dir_fd=root_fd)
        try:
            os.fchmod(fd, 0o444)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except OSError as exc:
        raise OcirtError(f"{where}: cannot write the guest's process description: {exc.strerror}") from None
    finally:
        os.close(root_fd)


def open_in_root(rootfs, name, flags):
    """openat2(RESOLVE_IN_ROOT): ``name`` resolved as if ``rootfs`` were /."""
    from ocirt.linux._libc import ffi, lib
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = ffi.new("struct open_how *", {"flags": flags | os.O_CLOEXEC,
                                             "resolve": lib.RESOLVE_IN_ROOT | lib.RESOLVE_NO_MAGICLINKS})
        fd = lib.ocirt_openat2(root_fd, name.encode(), how)
        if fd < 0:
            err = ffi.errno
            raise OSError(err, os.strerror(err), os.path.join(rootfs, name))
        return fd
    finally:
        os.close(root_fd)


def available_variants():
    """Handler names whose libkrun build loads here (for ``ocirt features``)."""
    found = []
    for variant, name in ((None, "krun"), ("sev", "krun-sev"), ("tdx", "krun-tdx")):
        try:
            libkrun.load(variant)
        except OcirtError:
            continue
        found.append(name)
    return found
