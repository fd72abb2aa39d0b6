"""The ``ocirt`` command: parse runc-style arguments and dispatch to a verb.

Only this module and the chosen verb's module are imported per call: every
verb lives in its own module under ``ocirt.cli`` and is imported by name, so
``state`` never pays for what ``create`` needs.
"""
import os
import sys

from ocirt import log
from ocirt.errors import OcirtError, UsageError
from ocirt.cli.flags import Flag, parse_flags

GLOBAL_FLAGS = [
    Flag("root", str),
    Flag("log", str),
    Flag("log-format", str, default="text"),
    Flag("log-level", str),
    Flag("debug", bool),
    Flag("systemd-cgroup", bool),
    Flag("rootless", str),
    Flag("cgroup-manager", str),
    Flag("criu", str),
    Flag("version", bool, "v"),
    Flag("help", bool, "h"),
]

_CONSOLE_PID = [
    Flag("console-socket", str),
    Flag("pidfd-socket", str),
    Flag("pid-file", str),
    Flag("preserve-fds", int, default=0),
]
_CREATE = [Flag("bundle", str, "b", default="."), Flag("no-pivot", bool), Flag("no-new-keyring", bool),
           Flag("detach", bool, "d")] + _CONSOLE_PID
_UPDATE = [Flag("resources", str, "r")] + [Flag(n, str) for n in (
    "blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share", "cpu-rt-period", "cpu-rt-runtime",
    "cpuset-cpus", "cpuset-mems", "memory", "memory-reservation", "memory-swap", "pids-limit", "cpu-idle",
    "kernel-memory", "kernel-memory-tcp", "l3-cache-schema", "mem-bw-schema")]

# verb -> (module, flags, usage, stop_at: parse flags only up to the Nth positional)
VERBS = {
    "create": ("create", _CREATE, "create [options] <container-id>", None),
    "run": ("run", _CREATE + [Flag("keep", bool), Flag("no-subreaper", bool)], "run [options] <container-id>", None),
    "start": ("start", [], "start <container-id>", None),
    "state": ("state", [], "state <container-id>", None),
    "kill": ("kill", [Flag("all", bool, "a"), Flag("signal", str, "s")], "kill [options] <container-id> [signal]", None),
    "delete": ("delete", [Flag("force", bool, "f")], "delete [--force] <container-id>", None),
    "exec": ("exec", [
        Flag("console-socket", str), Flag("pidfd-socket", str), Flag("cwd", str), Flag("env", list, "e"),
        Flag("tty", bool, "t"), Flag("user", str, "u"), Flag("additional-gids", list, "g"),
        Flag("process", str, "p"), Flag("detach", bool, "d"), Flag("pid-file", str),
        Flag("process-label", str), Flag("apparmor", str), Flag("no-new-privs", bool), Flag("cap", list, "c"),
        Flag("preserve-fds", int, default=0), Flag("cgroup", list), Flag("ignore-paused", bool),
    ], "exec [options] <container-id> <command> [args...]", 1),
    "list": ("list", [Flag("format", str, "f", default="table"), Flag("quiet", bool, "q")], "list [options]", None),
    "ps": ("ps", [Flag("format", str, "f", default="table")], "ps [--format table|json] <container-id> [ps options]", 1),
    "pause": ("pause", [], "pause <container-id>", None),
    "resume": ("resume", [], "resume <container-id>", None),
    "update": ("update", _UPDATE, "update [options] <container-id>", None),
    "events": ("events", [Flag("interval", str, default="5s"), Flag("stats", bool)], "events [options] <container-id>", None),
    "spec": ("spec", [Flag("bundle", str, "b", default="."), Flag("rootless", bool)], "spec [--bundle DIR] [--rootless]", None),
    "features": ("features", [], "features", None),
}
# podman treats `checkpoint --help` exiting 0 as "CRIU supported": it is not.
UNSUPPORTED = {"checkpoint", "restore"}

USAGE = """usage: ocirt [global options] <command> [command options] <arguments>

ocirt is a runc-compatible OCI runtime (with a libkrun microVM / TEE handler).

commands:
  create    create a container            start     start a created container
  run       create and start a container  state     print a container's state
  kill      send a signal to a container  delete    delete a container
  exec      run a process in a container  list      list containers
  ps        list a container's processes  pause     freeze a container
  resume    thaw a container              update    change resource limits
  events    resource stats and OOM events spec      write a default config.json
  features  print the features document

global options:
  --root DIR               state directory (default /run/ocirt)
  --log FILE               log file (default stderr)
  --log-format text|json   log format
  --debug                  verbose logging
  --systemd-cgroup         use the systemd cgroup driver (not available: no systemd)
"""


class Globals:
    def __init__(self, opts, prog):
        self.root = opts["root"] or default_root()
        self.log = opts["log"]
        self.debug = opts["debug"] or (opts["log-level"] or "").lower() in ("debug", "trace")
        self.systemd_cgroup = opts["systemd-cgroup"]
        self.prog = prog


def default_root():
    """The same answer on every call: podman never passes --root."""
    if os.geteuid() == 0:
        return "/run/ocirt"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/ocirt-{os.geteuid()}"
    return os.path.join(base, "ocirt")


def _version():
    """runc's layout: podman and CRI-O read the first line and the spec line."""
    from ocirt import __version__, OCI_VERSION
    from ocirt.linux.seccomp import library_version
    text = f"ocirt version {__version__}\ncommit: none\nspec: {OCI_VERSION}\npython: {sys.version.split()[0]}\n"
    return text + f"libseccomp: {library_version() or 'not installed'}\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    prog = os.path.basename(sys.argv[0] or "ocirt")
    try:
        opts, rest = parse_flags(GLOBAL_FLAGS, argv, stop_at=0)
        log.configure(opts["log"], opts["log-format"], opts["debug"])
        if opts["log-format"] not in ("text", "json"):
            raise UsageError(f"invalid log-format: {opts['log-format']}")
        if opts["version"]:
            sys.stdout.write(_version())
            return 0
        if not rest:
            sys.stdout.write(USAGE)
            return 0 if opts["help"] else 1
        verb, rest = rest[0], rest[1:]
        if opts["help"] or verb == "help":
            sys.stdout.write(USAGE)
            return 0
        if verb in UNSUPPORTED:
            raise OcirtError(f"{verb} is not supported: ocirt has no CRIU support")
        if verb not in VERBS:
            raise UsageError(f"No help topic for '{verb}'")
        module, flags, usage, stop_at = VERBS[verb]
        vopts, args = parse_flags(flags + [Flag("help", bool, "h")], rest, stop_at=stop_at)
        if vopts["help"]:
            sys.stdout.write(f"usage: ocirt {usage}\n")
            return 0
        g = Globals(opts, prog)
        if g.systemd_cgroup:
            raise OcirtError("--systemd-cgroup is not supported: this host runs no systemd; "
                             "use the cgroupfs driver (omit --systemd-cgroup)")
        mod = __import__(f"ocirt.cli.{module}", fromlist=["run"])
        return mod.run(g, vopts, args) or 0
    except OcirtError as exc:
        log.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, the traceback only under --debug
        if log.debug_enabled():
            import traceback
            traceback.print_exc()
        log.error(f"internal error: {type(exc).__name__}: {exc}")
        return 1


def require_id(args, usage_verb, extra_ok=False):
    """The container ID is the first positional; validate it as runc does."""
    if not args:
        raise UsageError(f'"{usage_verb}" requires a container id')
    if len(args) > 1 and not extra_ok:
        raise UsageError(f'"{usage_verb}" requires exactly one argument')
    from ocirt.state import validate_id
    validate_id(args[0])
    return args[0]
