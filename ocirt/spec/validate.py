"""Validation of config.json (and process.json, state, features).

Two layers, both reporting one line that names the JSON path:

1. the schemas in ``schemas/``, through the checks generated from them
   (``_schema_checks``; no jsonschema import at run time: see
   ``_schema_compiler``);
2. the rules of the runtime-spec a JSON schema cannot say, or that need a list
   Linux defines: unique namespace and rlimit types, known capability and rlimit
   names, absolute paths where the spec says MUST, supported ociVersion,
   network device names the kernel accepts, and the "at least one of" /
   "only together with" rules.

Capability names are checked against the full Linux list here, so an unknown
name (runtime-tools' ``process_capabilities_fail``) is refused before anything
is created; the core does not need to re-check them.
"""
from ocirt.errors import ConfigError
from ocirt.linux.caps import CAP_NAMES
from ocirt.spec import _schema_checks
from ocirt.spec._schema_checks import show

# The capability list lives with the code that applies it (linux/caps.py,
# numbers 0 to 40 from include/uapi/linux/capability.h).
CAPABILITIES = CAP_NAMES
_KNOWN_CAPABILITIES = frozenset(CAPABILITIES)

# getrlimit(2): config.md asks for an error on a type the kernel cannot map.
RLIMITS = frozenset((
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS", "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
))

HOOK_POINTS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

# ociVersion majors/minors ocirt reads: runtime-spec 1.0.0 ... 1.3.x
SUPPORTED_MAJOR = 1
NEWEST_MINOR = 3


IFNAMSIZ = 16                   # include/uapi/linux/if.h
_IFNAME_FORBIDDEN = frozenset("/: \t\n\v\f\r\0")


def interface_name_problem(name):
    """Why the kernel would refuse name for a network device (net/core/dev.c dev_valid_name), or None."""
    if not name:
        return "is empty"
    if len(name.encode()) >= IFNAMSIZ:
        return f"{show(name)} is longer than {IFNAMSIZ - 1} bytes"
    if name in (".", "..") or not _IFNAME_FORBIDDEN.isdisjoint(name):
        return f"{show(name)} is not a valid interface name (no '/', ':', whitespace; not . or ..)"
    return None


class _Invalid(Exception):
    def __init__(self, path, problem):
        super().__init__(path, problem)
        self.path = path
        self.problem = problem


def validate_config(config, source="config.json"):
    """Raise ConfigError("<source>: <json path>: <problem>") unless config is valid."""
    try:
        _schema_checks.check_config(config)
        _check_config_rules(config)
    except (_schema_checks.SchemaViolation, _Invalid) as e:
        raise ConfigError(f"{source}: {e.path}: {e.problem}") from None


def validate_process(process, source="process.json"):
    """The process object given to ``exec -p``: the schema of config's process, and its rules."""
    try:
        _schema_checks.check_process(process)
        _check_process_rules(process, "$")
    except (_schema_checks.SchemaViolation, _Invalid) as e:
        raise ConfigError(f"{source}: {e.path}: {e.problem}") from None


def validate_state(state, source="state"):
    try:
        _schema_checks.check_state(state)
        if state["status"] in ("created", "running") and "pid" not in state:
            # runtime.md: pid is REQUIRED when status is created or running (Linux)
            raise _Invalid("$.pid", f"is required when status is {state['status']}")
    except (_schema_checks.SchemaViolation, _Invalid) as e:
        raise ConfigError(f"{source}: {e.path}: {e.problem}") from None


def validate_features(features, source="features"):
    try:
        _schema_checks.check_features(features)
    except _schema_checks.SchemaViolation as e:
        raise ConfigError(f"{source}: {e.path}: {e.problem}") from None


def parse_oci_version(text):
    """(major, minor, patch) of a SemVer 2.0 string, or None if it is not one."""
    core = text.partition("+")[0].partition("-")[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() and p.isascii() and (p == "0" or p[0] != "0") for p in parts):
        return None
    return tuple(int(p) for p in parts)


# -- rules beyond the schema; the document already passed the schema checks ----

def _check_config_rules(config):
    version = parse_oci_version(config["ociVersion"])
    if version is None:
        raise _Invalid("$.ociVersion", f"{show(config['ociVersion'])} is not a SemVer version such as \"1.2.0\"")
    if version[0] != SUPPORTED_MAJOR or version[1] > NEWEST_MINOR:
        raise _Invalid("$.ociVersion", f"{show(config['ociVersion'])} is not supported "
                       f"(ocirt reads runtime-spec 1.0.0 to 1.{NEWEST_MINOR}.x)")
    if "process" in config:
        _check_process_rules(config["process"], "$.process")
    for point in HOOK_POINTS:
        for i, hook in enumerate(config.get("hooks", {}).get(point, ())):
            if not hook["path"].startswith("/"):
                raise _Invalid(f"$.hooks.{point}[{i}].path", f"{show(hook['path'])} is not an absolute path")
    linux = config.get("linux")
    if linux is not None:
        _check_linux_rules(linux)


def _check_process_rules(process, where):
    if not process["cwd"].startswith("/"):
        raise _Invalid(f"{where}.cwd", f"{show(process['cwd'])} is not an absolute path")
    if "args" in process and not process["args"]:
        raise _Invalid(f"{where}.args", "must name the program to run (at least one entry)")
    for name in CAPABILITY_SETS:
        for i, cap in enumerate(process.get("capabilities", {}).get(name, ())):
            if cap not in _KNOWN_CAPABILITIES:
                raise _Invalid(f"{where}.capabilities.{name}[{i}]", f"unknown capability {show(cap)}")
    first_seen = {}
    for i, rlimit in enumerate(process.get("rlimits", ())):
        kind = rlimit["type"]
        if kind not in RLIMITS:
            raise _Invalid(f"{where}.rlimits[{i}].type", f"unknown rlimit {show(kind)}")
        if kind in first_seen:
            raise _Invalid(f"{where}.rlimits[{i}].type",
                           f"duplicate rlimit {show(kind)} (also at {where}.rlimits[{first_seen[kind]}])")
        first_seen[kind] = i


def _check_linux_rules(linux):
    first_seen = {}
    for i, ns in enumerate(linux.get("namespaces", ())):
        kind = ns["type"]
        if kind in first_seen:
            raise _Invalid(f"$.linux.namespaces[{i}].type",
                           f"duplicate namespace {show(kind)} (also at $.linux.namespaces[{first_seen[kind]}])")
        first_seen[kind] = i
        if ns.get("path") and not ns["path"].startswith("/"):
            raise _Invalid(f"$.linux.namespaces[{i}].path", f"{show(ns['path'])} is not an absolute path")
    for i, device in enumerate(linux.get("devices", ())):
        if device["type"] != "p":
            for field in ("major", "minor"):
                if field not in device:
                    raise _Invalid(f"$.linux.devices[{i}].{field}",
                                   f"is required for a device of type {show(device['type'])}")
    _check_net_devices(linux.get("netDevices", {}))
    seccomp = linux.get("seccomp")
    if seccomp is not None and seccomp.get("listenerMetadata") and not seccomp.get("listenerPath"):
        raise _Invalid("$.linux.seccomp.listenerMetadata", "is set but listenerPath is not")
    resources = linux.get("resources", {})
    for i, device in enumerate(resources.get("blockIO", {}).get("weightDevice", ())):
        if "weight" not in device and "leafWeight" not in device:
            raise _Invalid(f"$.linux.resources.blockIO.weightDevice[{i}]", "needs weight or leafWeight")
    for name, limit in resources.get("rdma", {}).items():
        if "hcaHandles" not in limit and "hcaObjects" not in limit:
            raise _Invalid(_schema_checks.member_path("$.linux.resources.rdma", name), "needs hcaHandles or hcaObjects")

def _check_net_devices(net_devices):
    """Names the kernel accepts, and no two devices with one name in the container."""
    named = {}
    for host_name, device in net_devices.items():
        where = _schema_checks.member_path("$.linux.netDevices", host_name)
        problem = interface_name_problem(host_name)
        if problem:
            raise _Invalid(where, problem)
        name = device.get("name", host_name)
        if "name" in device:
            problem = interface_name_problem(name)
            if problem:
                raise _Invalid(f"{where}.name", problem)
        if name in named:
            raise _Invalid(where, f"would be named {show(name)} in the container, as {show(named[name])} would")
        named[name] = host_name
