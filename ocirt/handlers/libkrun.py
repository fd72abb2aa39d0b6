"""libkrun through cffi ABI mode: no libkrun headers are needed to build ocirt.

Declarations (``_libkrun_build.py``) follow libkrun's ``include/libkrun.h``
as summarised in /work/shared/reference/libkrun-and-krun-handler.md §3.
In ABI mode a declared function that the loaded library does not export only
fails when it is looked up, so every optional call is probed with ``has()``
before use: libkrun's API changes between releases (§3.10) and differs
between the plain, SEV and TDX builds (§2).

Every call returns 0 or a negative errno (§1); ``call()`` turns a failure into
one error line naming the function.
"""
import os
import stat

from ocirt.errors import OcirtError

SONAMES = {None: "libkrun.so.1", "sev": "libkrun-sev.so.1", "tdx": "libkrun-tdx.so.1"}

# Tests load the libkrun test double from here; see _library_path for the checks.
LIBRARY_DIR_ENV = "OCIRT_LIBKRUN_DIR"

# KRUN_FEATURE_* (reference §2; libkrun.h has no stable header to read them from here)
FEATURE_AMD_SEV = 7
FEATURE_INTEL_TDX = 8


class LibraryMissing(OcirtError):
    """dlopen failed: the library (or one it needs) is not installed."""


_ffi = None
_dl = None
_loaded = {}   # variant -> Library; survives fork, so init reuses the runtime's handle


def _get_ffi():
    global _ffi, _dl
    if _ffi is None:
        try:   # pre-parsed by _libkrun_build.py: no pycparser run on every create
            from ocirt.handlers._libkrun_ffi import ffi as _ffi
        except ImportError:   # a cffi too different from the one that generated it
            from ocirt.handlers._libkrun_build import ffibuilder as _ffi
        libc = _ffi.dlopen(None)
        # Resolved up front: a first lookup of dlerror would itself clear the error.
        _dl = (libc.dlopen, libc.dlerror)
    return _ffi


def _dlopen(ffi, path):
    """dlopen(3) ourselves: cffi's ffi.dlopen(name) falls back to
    ctypes.util.find_library (ldconfig and gcc subprocesses) on failure and
    buries the loader's message in its own."""
    dlopen, dlerror = _dl
    handle = dlopen(path.encode(), ffi.RTLD_NOW)
    if handle == ffi.NULL:
        error = dlerror()
        message = ffi.string(error).decode(errors="replace") if error != ffi.NULL else "unknown error"
        if message.startswith(path + ": "):   # keep the name when a *dependency* is what is missing
            message = message[len(path) + 2:]
        raise LibraryMissing(f"cannot load {path}: {message}")
    return ffi.dlopen(handle)


def _library_path(soname):
    """The soname for the dynamic loader, or a file in $OCIRT_LIBKRUN_DIR.

    The override exists for the test double.  It is honoured only for an
    absolute directory and a regular file both owned by root (or by the
    caller) and writable by nobody else, so it grants nothing that
    LD_LIBRARY_PATH (which dlopen honours anyway) would not.
    """
    directory = os.environ.get(LIBRARY_DIR_ENV)
    if not directory:
        return soname
    if not os.path.isabs(directory):
        raise OcirtError(f"{LIBRARY_DIR_ENV}={directory}: must be an absolute path")
    path = os.path.join(directory, soname)
    for p, follow in ((directory, True), (path, False)):
        try:
            st = os.stat(p, follow_symlinks=follow)
        except OSError as exc:
            raise OcirtError(f"{LIBRARY_DIR_ENV}: {p}: {exc.strerror}") from None
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise OcirtError(f"{LIBRARY_DIR_ENV}: {p}: refusing: must be owned by root and not group/world-writable")
        if not follow and not stat.S_ISREG(st.st_mode):
            raise OcirtError(f"{LIBRARY_DIR_ENV}: {p}: refusing: not a regular file")
    return path


class Library:
    def __init__(self, variant):
        self.soname = SONAMES[variant]
        self.ffi = _get_ffi()
        self.path = _library_path(self.soname)
        self.lib = _dlopen(self.ffi, self.path)

    def _symbol(self, name):
        """The function, or None.  A missing symbol raises AttributeError with
        in-line declarations, ffi.error with the pre-parsed module."""
        try:
            return getattr(self.lib, name)
        except (AttributeError, self.ffi.error):
            return None

    def has(self, name):
        return self._symbol(name) is not None

    def call(self, name, *args):
        """Call ``name``; a negative return is ``-errno``: raise naming the call."""
        fn = self._symbol(name)
        if fn is None:
            raise OcirtError(f"{self.soname} has no {name}(): this libkrun is too old or too new for ocirt")
        ret = fn(*args)
        if ret < 0:
            raise OcirtError(f"{name}: {os.strerror(-ret)} (errno {-ret}, {self.soname})")
        return ret

    def has_feature(self, feature):
        """True/False from krun_has_feature, None when the library predates it (<1.17.3)."""
        fn = self._symbol("krun_has_feature")
        return None if fn is None else fn(feature) == 1

    def strings(self, items):
        """A NULL-terminated ``const char *const[]``; keep the result alive until krun_start_enter."""
        owned = [self.ffi.new("char[]", s.encode()) for s in items]
        array = self.ffi.new("char *[]", owned + [self.ffi.NULL])
        return array, owned


def load(variant):
    lib = _loaded.get(variant)
    if lib is None:
        lib = _loaded[variant] = Library(variant)
    return lib
