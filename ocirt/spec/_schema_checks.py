"""Checks generated from schemas/*.json by ocirt/spec/_schema_compiler.py: do not edit.

Regenerate with ``python3 -m ocirt.spec._schema_compiler``.  Each function
checks one schema node; a failure raises SchemaViolation(json_path, problem).
"""


class SchemaViolation(ValueError):
    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _fail(path, problem):
    raise SchemaViolation(path, problem)


def member_path(path, key):
    """The JSON path of a member whose name comes from the document."""
    if key.isidentifier():
        return f"{path}.{key}"
    import json
    return f"{path}[{json.dumps(key)}]"


def show(value):
    import json
    text = json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


class _Anchored:
    """An anchored pattern ``^...$`` made of character sets, each taken once,
    ``*`` or ``+`` times: matched without ``re``, whose import (enum,
    functools, collections) costs ~7 ms on every create.  The compiler only
    emits one when a greedy left-to-right walk is exact (a repeated set never
    shares a character with the set after it).  ``$`` is the end of the text,
    as in ECMA-262, which JSON Schema patterns follow."""
    __slots__ = ("source", "parts")

    def __init__(self, source, parts):
        self.source = source
        self.parts = parts  # ((chars, negated, min, repeats), ...)

    def search(self, text):
        i, n = 0, len(text)
        for chars, negated, least, repeats in self.parts:
            start = i
            while i < n and (text[i] in chars) != negated and (repeats or i == start):
                i += 1
            if i - start < least:
                return None
        return True if i == n else None


class _Pattern:
    """Any other pattern: compiled with ``re`` on first use."""
    __slots__ = ("source", "compiled")

    def __init__(self, source):
        self.source = source
        self.compiled = None

    def search(self, text):
        if self.compiled is None:
            import re
            self.compiled = re.compile(self.source.removesuffix("$") + "\\Z"
                                       if self.source.endswith("$") and not self.source.endswith("\\$")
                                       else self.source)
        return self.compiled.search(text)


_RE_0 = _Anchored('^[0-9, -]*$', ((' ,-0123456789', False, 0, True),))
_RE_1 = _Anchored('^MB:[^\\n]*$', (('M', False, 1, False), ('B', False, 1, False), (':', False, 1, False), ('\n', True, 0, True)))
_RE_2 = _Anchored('^RLIMIT_[A-Z]+$', (('R', False, 1, False), ('L', False, 1, False), ('I', False, 1, False), ('M', False, 1, False), ('I', False, 1, False), ('T', False, 1, False), ('_', False, 1, False), ('ABCDEFGHIJKLMNOPQRSTUVWXYZ', False, 1, True)))
_RE_3 = _Anchored('^CAP_[A-Z_]+$', (('C', False, 1, False), ('A', False, 1, False), ('P', False, 1, False), ('_', False, 1, False), ('ABCDEFGHIJKLMNOPQRSTUVWXYZ_', False, 1, True)))
_RE_4 = _Anchored('^[^\\n]*$', (('\n', True, 0, True),))
_RE_5 = _Anchored('^[rwm]*$', (('mrw', False, 0, True),))
_RE_6 = _Anchored('^[1-9][0-9]*[KMG]B$', (('123456789', False, 1, False), ('0123456789', False, 0, True), ('GKM', False, 1, False), ('B', False, 1, False)))


def check_config(document):
    _check_config(document, '$')


def check_process(document):
    _check_config_Process(document, '$')


def check_state(document):
    _check_state(document, '$')


def check_features(document):
    _check_features(document, '$')


def _check_config(x, path):
    """config-schema.json"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'ociVersion' not in x:
        _fail(path + '.ociVersion', 'is required')
    if 'ociVersion' in x:
        v = x['ociVersion']
        if not isinstance(v, str):
            _fail(path + '.ociVersion', 'must be a string')
    if 'root' in x:
        _check_config_root(x['root'], path + '.root')
    if 'mounts' in x:
        _check_config_mounts(x['mounts'], path + '.mounts')
    if 'process' in x:
        _check_config_Process(x['process'], path + '.process')
    if 'hostname' in x:
        v = x['hostname']
        if not isinstance(v, str):
            _fail(path + '.hostname', 'must be a string')
    if 'domainname' in x:
        v = x['domainname']
        if not isinstance(v, str):
            _fail(path + '.domainname', 'must be a string')
    if 'hooks' in x:
        _check_config_hooks(x['hooks'], path + '.hooks')
    if 'annotations' in x:
        _check_defs_StringMap(x['annotations'], path + '.annotations')
    if 'linux' in x:
        _check_config_linux(x['linux'], path + '.linux')


def _check_config_Process(x, path):
    """config-schema.json#/definitions/Process"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'cwd' not in x:
        _fail(path + '.cwd', 'is required')
    if 'terminal' in x:
        v = x['terminal']
        if not isinstance(v, bool):
            _fail(path + '.terminal', 'must be a boolean')
    if 'consoleSize' in x:
        _check_config_Process_consoleSize(x['consoleSize'], path + '.consoleSize')
    if 'cwd' in x:
        v = x['cwd']
        if not isinstance(v, str):
            _fail(path + '.cwd', 'must be a string')
    if 'env' in x:
        _check_defs_Strings(x['env'], path + '.env')
    if 'args' in x:
        _check_defs_Strings(x['args'], path + '.args')
    if 'commandLine' in x:
        v = x['commandLine']
        if not isinstance(v, str):
            _fail(path + '.commandLine', 'must be a string')
    if 'rlimits' in x:
        _check_config_Process_rlimits(x['rlimits'], path + '.rlimits')
    if 'apparmorProfile' in x:
        v = x['apparmorProfile']
        if not isinstance(v, str):
            _fail(path + '.apparmorProfile', 'must be a string')
    if 'capabilities' in x:
        _check_config_Process_capabilities(x['capabilities'], path + '.capabilities')
    if 'noNewPrivileges' in x:
        v = x['noNewPrivileges']
        if not isinstance(v, bool):
            _fail(path + '.noNewPrivileges', 'must be a boolean')
    if 'oomScoreAdj' in x:
        v = x['oomScoreAdj']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.oomScoreAdj', 'must be an integer')
    if 'scheduler' in x:
        _check_config_Process_scheduler(x['scheduler'], path + '.scheduler')
    if 'selinuxLabel' in x:
        v = x['selinuxLabel']
        if not isinstance(v, str):
            _fail(path + '.selinuxLabel', 'must be a string')
    if 'ioPriority' in x:
        _check_config_Process_ioPriority(x['ioPriority'], path + '.ioPriority')
    if 'execCPUAffinity' in x:
        _check_config_Process_execCPUAffinity(x['execCPUAffinity'], path + '.execCPUAffinity')
    if 'user' in x:
        _check_config_Process_user(x['user'], path + '.user')


def _check_state(x, path):
    """state-schema.json"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'ociVersion' not in x:
        _fail(path + '.ociVersion', 'is required')
    if 'id' not in x:
        _fail(path + '.id', 'is required')
    if 'status' not in x:
        _fail(path + '.status', 'is required')
    if 'bundle' not in x:
        _fail(path + '.bundle', 'is required')
    if 'ociVersion' in x:
        v = x['ociVersion']
        if not isinstance(v, str):
            _fail(path + '.ociVersion', 'must be a string')
    if 'id' in x:
        v = x['id']
        if not isinstance(v, str):
            _fail(path + '.id', 'must be a string')
    if 'status' in x:
        v = x['status']
        if not isinstance(v, str):
            _fail(path + '.status', 'must be a string')
        if v not in ('creating', 'created', 'running', 'stopped', 'paused'):
            _fail(path + '.status', show(v) + ' is not one of: creating, created, running, stopped, paused')
    if 'pid' in x:
        v = x['pid']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.pid', 'must be an integer')
        if v < 0:
            _fail(path + '.pid', f'{v} is less than the minimum 0')
    if 'bundle' in x:
        v = x['bundle']
        if not isinstance(v, str):
            _fail(path + '.bundle', 'must be a string')
    if 'annotations' in x:
        _check_defs_StringMap(x['annotations'], path + '.annotations')


def _check_features(x, path):
    """features-schema.json"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'ociVersionMin' not in x:
        _fail(path + '.ociVersionMin', 'is required')
    if 'ociVersionMax' not in x:
        _fail(path + '.ociVersionMax', 'is required')
    if 'ociVersionMin' in x:
        v = x['ociVersionMin']
        if not isinstance(v, str):
            _fail(path + '.ociVersionMin', 'must be a string')
    if 'ociVersionMax' in x:
        v = x['ociVersionMax']
        if not isinstance(v, str):
            _fail(path + '.ociVersionMax', 'must be a string')
    if 'hooks' in x:
        _check_defs_Strings(x['hooks'], path + '.hooks')
    if 'mountOptions' in x:
        _check_defs_Strings(x['mountOptions'], path + '.mountOptions')
    if 'annotations' in x:
        _check_defs_StringMap(x['annotations'], path + '.annotations')
    if 'potentiallyUnsafeConfigAnnotations' in x:
        _check_defs_Strings(x['potentiallyUnsafeConfigAnnotations'], path + '.potentiallyUnsafeConfigAnnotations')
    if 'linux' in x:
        _check_features_linux(x['linux'], path + '.linux')


def _check_config_root(x, path):
    """config-schema.json#/properties/root"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'path' not in x:
        _fail(path + '.path', 'is required')
    if 'path' in x:
        v = x['path']
        if not isinstance(v, str):
            _fail(path + '.path', 'must be a string')
    if 'readonly' in x:
        v = x['readonly']
        if not isinstance(v, bool):
            _fail(path + '.readonly', 'must be a boolean')


def _check_config_mounts(x, path):
    """config-schema.json#/properties/mounts"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_Mount(v, f"{path}[{i}]")


def _check_config_hooks(x, path):
    """config-schema.json#/properties/hooks"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'prestart' in x:
        _check_defs_Hooks(x['prestart'], path + '.prestart')
    if 'createRuntime' in x:
        _check_defs_Hooks(x['createRuntime'], path + '.createRuntime')
    if 'createContainer' in x:
        _check_defs_Hooks(x['createContainer'], path + '.createContainer')
    if 'startContainer' in x:
        _check_defs_Hooks(x['startContainer'], path + '.startContainer')
    if 'poststart' in x:
        _check_defs_Hooks(x['poststart'], path + '.poststart')
    if 'poststop' in x:
        _check_defs_Hooks(x['poststop'], path + '.poststop')


def _check_defs_StringMap(x, path):
    """defs.json#/definitions/StringMap"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    for key, v in x.items():
        if not isinstance(v, str):
            _fail(member_path(path, key), 'must be a string')


def _check_config_linux(x, path):
    """config-linux.json#/linux"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'namespaces' in x:
        _check_config_linux_namespaces(x['namespaces'], path + '.namespaces')
    if 'uidMappings' in x:
        _check_defs_IDMappings(x['uidMappings'], path + '.uidMappings')
    if 'gidMappings' in x:
        _check_defs_IDMappings(x['gidMappings'], path + '.gidMappings')
    if 'timeOffsets' in x:
        _check_config_linux_timeOffsets(x['timeOffsets'], path + '.timeOffsets')
    if 'devices' in x:
        _check_config_linux_devices(x['devices'], path + '.devices')
    if 'netDevices' in x:
        _check_config_linux_netDevices(x['netDevices'], path + '.netDevices')
    if 'cgroupsPath' in x:
        v = x['cgroupsPath']
        if not isinstance(v, str):
            _fail(path + '.cgroupsPath', 'must be a string')
    if 'resources' in x:
        _check_config_linux_Resources(x['resources'], path + '.resources')
    if 'intelRdt' in x:
        _check_config_linux_intelRdt(x['intelRdt'], path + '.intelRdt')
    if 'sysctl' in x:
        _check_defs_StringMap(x['sysctl'], path + '.sysctl')
    if 'seccomp' in x:
        _check_config_linux_seccomp(x['seccomp'], path + '.seccomp')
    if 'rootfsPropagation' in x:
        v = x['rootfsPropagation']
        if not isinstance(v, str):
            _fail(path + '.rootfsPropagation', 'must be a string')
        if v not in ('private', 'shared', 'slave', 'unbindable'):
            _fail(path + '.rootfsPropagation', show(v) + ' is not one of: private, shared, slave, unbindable')
    if 'maskedPaths' in x:
        _check_defs_Strings(x['maskedPaths'], path + '.maskedPaths')
    if 'readonlyPaths' in x:
        _check_defs_Strings(x['readonlyPaths'], path + '.readonlyPaths')
    if 'mountLabel' in x:
        v = x['mountLabel']
        if not isinstance(v, str):
            _fail(path + '.mountLabel', 'must be a string')
    if 'personality' in x:
        _check_config_linux_personality(x['personality'], path + '.personality')
    if 'memoryPolicy' in x:
        _check_config_linux_memoryPolicy(x['memoryPolicy'], path + '.memoryPolicy')


def _check_config_Process_consoleSize(x, path):
    """config-schema.json#/definitions/Process/properties/consoleSize"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'height' not in x:
        _fail(path + '.height', 'is required')
    if 'width' not in x:
        _fail(path + '.width', 'is required')
    if 'height' in x:
        v = x['height']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.height', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.height', f'{v} is out of range [0, 18446744073709551615]')
    if 'width' in x:
        v = x['width']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.width', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.width', f'{v} is out of range [0, 18446744073709551615]')


def _check_defs_Strings(x, path):
    """defs.json#/definitions/Strings"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')


def _check_config_Process_rlimits(x, path):
    """config-schema.json#/definitions/Process/properties/rlimits"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_Rlimit(v, f"{path}[{i}]")


def _check_config_Process_capabilities(x, path):
    """config-schema.json#/definitions/Process/properties/capabilities"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'effective' in x:
        _check_defs_linux_Capabilities(x['effective'], path + '.effective')
    if 'bounding' in x:
        _check_defs_linux_Capabilities(x['bounding'], path + '.bounding')
    if 'inheritable' in x:
        _check_defs_linux_Capabilities(x['inheritable'], path + '.inheritable')
    if 'permitted' in x:
        _check_defs_linux_Capabilities(x['permitted'], path + '.permitted')
    if 'ambient' in x:
        _check_defs_linux_Capabilities(x['ambient'], path + '.ambient')


def _check_config_Process_scheduler(x, path):
    """config-schema.json#/definitions/Process/properties/scheduler"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'policy' not in x:
        _fail(path + '.policy', 'is required')
    if 'policy' in x:
        v = x['policy']
        if not isinstance(v, str):
            _fail(path + '.policy', 'must be a string')
        if v not in ('SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE'):
            _fail(path + '.policy', show(v) + ' is not one of: SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE')
    if 'nice' in x:
        v = x['nice']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.nice', 'must be an integer')
        if not -2147483648 <= v <= 2147483647:
            _fail(path + '.nice', f'{v} is out of range [-2147483648, 2147483647]')
    if 'priority' in x:
        v = x['priority']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.priority', 'must be an integer')
        if not -2147483648 <= v <= 2147483647:
            _fail(path + '.priority', f'{v} is out of range [-2147483648, 2147483647]')
    if 'flags' in x:
        _check_config_Process_scheduler_flags(x['flags'], path + '.flags')
    if 'runtime' in x:
        v = x['runtime']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.runtime', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.runtime', f'{v} is out of range [0, 18446744073709551615]')
    if 'deadline' in x:
        v = x['deadline']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.deadline', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.deadline', f'{v} is out of range [0, 18446744073709551615]')
    if 'period' in x:
        v = x['period']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.period', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.period', f'{v} is out of range [0, 18446744073709551615]')


def _check_config_Process_ioPriority(x, path):
    """config-schema.json#/definitions/Process/properties/ioPriority"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'class' not in x:
        _fail(path + '.class', 'is required')
    if 'class' in x:
        v = x['class']
        if not isinstance(v, str):
            _fail(path + '.class', 'must be a string')
        if v not in ('IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE'):
            _fail(path + '.class', show(v) + ' is not one of: IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE')
    if 'priority' in x:
        v = x['priority']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.priority', 'must be an integer')
        if not -2147483648 <= v <= 2147483647:
            _fail(path + '.priority', f'{v} is out of range [-2147483648, 2147483647]')


def _check_config_Process_execCPUAffinity(x, path):
    """config-schema.json#/definitions/Process/properties/execCPUAffinity"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'initial' in x:
        v = x['initial']
        if not isinstance(v, str):
            _fail(path + '.initial', 'must be a string')
        if _RE_0.search(v) is None:
            _fail(path + '.initial', show(v) + ' does not match ^[0-9, -]*$')
    if 'final' in x:
        v = x['final']
        if not isinstance(v, str):
            _fail(path + '.final', 'must be a string')
        if _RE_0.search(v) is None:
            _fail(path + '.final', show(v) + ' does not match ^[0-9, -]*$')


def _check_config_Process_user(x, path):
    """config-schema.json#/definitions/Process/properties/user"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'uid' in x:
        v = x['uid']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.uid', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.uid', f'{v} is out of range [0, 4294967295]')
    if 'gid' in x:
        v = x['gid']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.gid', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.gid', f'{v} is out of range [0, 4294967295]')
    if 'umask' in x:
        v = x['umask']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.umask', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.umask', f'{v} is out of range [0, 4294967295]')
    if 'additionalGids' in x:
        _check_defs_GIDs(x['additionalGids'], path + '.additionalGids')
    if 'username' in x:
        v = x['username']
        if not isinstance(v, str):
            _fail(path + '.username', 'must be a string')


def _check_features_linux(x, path):
    """features-linux.json#/linux"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'namespaces' in x:
        _check_features_linux_namespaces(x['namespaces'], path + '.namespaces')
    if 'capabilities' in x:
        _check_defs_linux_Capabilities(x['capabilities'], path + '.capabilities')
    if 'cgroup' in x:
        _check_features_linux_cgroup(x['cgroup'], path + '.cgroup')
    if 'seccomp' in x:
        _check_features_linux_seccomp(x['seccomp'], path + '.seccomp')
    if 'apparmor' in x:
        _check_features_linux_Switch(x['apparmor'], path + '.apparmor')
    if 'selinux' in x:
        _check_features_linux_Switch(x['selinux'], path + '.selinux')
    if 'intelRdt' in x:
        _check_features_linux_intelRdt(x['intelRdt'], path + '.intelRdt')
    if 'mountExtensions' in x:
        _check_features_linux_mountExtensions(x['mountExtensions'], path + '.mountExtensions')
    if 'netDevices' in x:
        _check_features_linux_Switch(x['netDevices'], path + '.netDevices')
    if 'memoryPolicy' in x:
        _check_features_linux_memoryPolicy(x['memoryPolicy'], path + '.memoryPolicy')


def _check_defs_Mount(x, path):
    """defs.json#/definitions/Mount"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'destination' not in x:
        _fail(path + '.destination', 'is required')
    if 'destination' in x:
        v = x['destination']
        if not isinstance(v, str):
            _fail(path + '.destination', 'must be a string')
    if 'source' in x:
        v = x['source']
        if not isinstance(v, str):
            _fail(path + '.source', 'must be a string')
    if 'type' in x:
        v = x['type']
        if not isinstance(v, str):
            _fail(path + '.type', 'must be a string')
    if 'options' in x:
        _check_defs_Strings(x['options'], path + '.options')
    if 'uidMappings' in x:
        _check_defs_IDMappings(x['uidMappings'], path + '.uidMappings')
    if 'gidMappings' in x:
        _check_defs_IDMappings(x['gidMappings'], path + '.gidMappings')


def _check_defs_Hooks(x, path):
    """defs.json#/definitions/Hooks"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_Hook(v, f"{path}[{i}]")


def _check_config_linux_namespaces(x, path):
    """config-linux.json#/linux/properties/namespaces"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_Namespace(v, f"{path}[{i}]")


def _check_defs_IDMappings(x, path):
    """defs.json#/definitions/IDMappings"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_IDMapping(v, f"{path}[{i}]")


def _check_config_linux_timeOffsets(x, path):
    """config-linux.json#/linux/properties/timeOffsets"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    for key, v in x.items():
        _check_defs_linux_TimeOffset(v, member_path(path, key))


def _check_config_linux_devices(x, path):
    """config-linux.json#/linux/properties/devices"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_Device(v, f"{path}[{i}]")


def _check_config_linux_netDevices(x, path):
    """config-linux.json#/linux/properties/netDevices"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    for key, v in x.items():
        _check_defs_linux_NetDevice(v, member_path(path, key))


def _check_config_linux_Resources(x, path):
    """config-linux.json#/definitions/Resources"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'devices' in x:
        _check_config_linux_Resources_devices(x['devices'], path + '.devices')
    if 'memory' in x:
        _check_config_linux_Resources_memory(x['memory'], path + '.memory')
    if 'cpu' in x:
        _check_config_linux_Resources_cpu(x['cpu'], path + '.cpu')
    if 'blockIO' in x:
        _check_config_linux_Resources_blockIO(x['blockIO'], path + '.blockIO')
    if 'hugepageLimits' in x:
        _check_config_linux_Resources_hugepageLimits(x['hugepageLimits'], path + '.hugepageLimits')
    if 'network' in x:
        _check_config_linux_Resources_network(x['network'], path + '.network')
    if 'pids' in x:
        _check_config_linux_Resources_pids(x['pids'], path + '.pids')
    if 'rdma' in x:
        _check_config_linux_Resources_rdma(x['rdma'], path + '.rdma')
    if 'unified' in x:
        _check_defs_StringMap(x['unified'], path + '.unified')


def _check_config_linux_intelRdt(x, path):
    """config-linux.json#/linux/properties/intelRdt"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'closID' in x:
        v = x['closID']
        if not isinstance(v, str):
            _fail(path + '.closID', 'must be a string')
    if 'l3CacheSchema' in x:
        v = x['l3CacheSchema']
        if not isinstance(v, str):
            _fail(path + '.l3CacheSchema', 'must be a string')
    if 'memBwSchema' in x:
        v = x['memBwSchema']
        if not isinstance(v, str):
            _fail(path + '.memBwSchema', 'must be a string')
        if _RE_1.search(v) is None:
            _fail(path + '.memBwSchema', show(v) + ' does not match ^MB:[^\\n]*$')
    if 'schemata' in x:
        _check_config_linux_intelRdt_schemata(x['schemata'], path + '.schemata')
    if 'enableMonitoring' in x:
        v = x['enableMonitoring']
        if not isinstance(v, bool):
            _fail(path + '.enableMonitoring', 'must be a boolean')
    if 'enableCMT' in x:
        v = x['enableCMT']
        if not isinstance(v, bool):
            _fail(path + '.enableCMT', 'must be a boolean')
    if 'enableMBM' in x:
        v = x['enableMBM']
        if not isinstance(v, bool):
            _fail(path + '.enableMBM', 'must be a boolean')


def _check_config_linux_seccomp(x, path):
    """config-linux.json#/linux/properties/seccomp"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'defaultAction' not in x:
        _fail(path + '.defaultAction', 'is required')
    if 'defaultAction' in x:
        v = x['defaultAction']
        if not isinstance(v, str):
            _fail(path + '.defaultAction', 'must be a string')
        if v not in ('SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY'):
            _fail(path + '.defaultAction', show(v) + ' is not one of: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY')
    if 'defaultErrnoRet' in x:
        v = x['defaultErrnoRet']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.defaultErrnoRet', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.defaultErrnoRet', f'{v} is out of range [0, 4294967295]')
    if 'architectures' in x:
        _check_config_linux_seccomp_architectures(x['architectures'], path + '.architectures')
    if 'flags' in x:
        _check_config_linux_seccomp_flags(x['flags'], path + '.flags')
    if 'listenerPath' in x:
        v = x['listenerPath']
        if not isinstance(v, str):
            _fail(path + '.listenerPath', 'must be a string')
    if 'listenerMetadata' in x:
        v = x['listenerMetadata']
        if not isinstance(v, str):
            _fail(path + '.listenerMetadata', 'must be a string')
    if 'syscalls' in x:
        _check_config_linux_seccomp_syscalls(x['syscalls'], path + '.syscalls')


def _check_config_linux_personality(x, path):
    """config-linux.json#/linux/properties/personality"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'domain' not in x:
        _fail(path + '.domain', 'is required')
    if 'domain' in x:
        v = x['domain']
        if not isinstance(v, str):
            _fail(path + '.domain', 'must be a string')
        if v not in ('LINUX', 'LINUX32'):
            _fail(path + '.domain', show(v) + ' is not one of: LINUX, LINUX32')
    if 'flags' in x:
        _check_defs_Strings(x['flags'], path + '.flags')


def _check_config_linux_memoryPolicy(x, path):
    """config-linux.json#/linux/properties/memoryPolicy"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'mode' not in x:
        _fail(path + '.mode', 'is required')
    if 'mode' in x:
        v = x['mode']
        if not isinstance(v, str):
            _fail(path + '.mode', 'must be a string')
        if v not in ('MPOL_DEFAULT', 'MPOL_BIND', 'MPOL_INTERLEAVE', 'MPOL_WEIGHTED_INTERLEAVE', 'MPOL_PREFERRED', 'MPOL_PREFERRED_MANY', 'MPOL_LOCAL'):
            _fail(path + '.mode', show(v) + ' is not one of: MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_LOCAL')
    if 'nodes' in x:
        v = x['nodes']
        if not isinstance(v, str):
            _fail(path + '.nodes', 'must be a string')
    if 'flags' in x:
        _check_config_linux_memoryPolicy_flags(x['flags'], path + '.flags')


def _check_defs_linux_Rlimit(x, path):
    """defs-linux.json#/definitions/Rlimit"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'type' not in x:
        _fail(path + '.type', 'is required')
    if 'soft' not in x:
        _fail(path + '.soft', 'is required')
    if 'hard' not in x:
        _fail(path + '.hard', 'is required')
    if 'type' in x:
        v = x['type']
        if not isinstance(v, str):
            _fail(path + '.type', 'must be a string')
        if _RE_2.search(v) is None:
            _fail(path + '.type', show(v) + ' does not match ^RLIMIT_[A-Z]+$')
    if 'soft' in x:
        v = x['soft']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.soft', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.soft', f'{v} is out of range [0, 18446744073709551615]')
    if 'hard' in x:
        v = x['hard']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.hard', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.hard', f'{v} is out of range [0, 18446744073709551615]')


def _check_defs_linux_Capabilities(x, path):
    """defs-linux.json#/definitions/Capabilities"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if _RE_3.search(v) is None:
            _fail(f"{path}[{i}]", show(v) + ' does not match ^CAP_[A-Z_]+$')


def _check_config_Process_scheduler_flags(x, path):
    """config-schema.json#/definitions/Process/properties/scheduler/properties/flags"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SCHED_FLAG_RESET_ON_FORK', 'SCHED_FLAG_RECLAIM', 'SCHED_FLAG_DL_OVERRUN', 'SCHED_FLAG_KEEP_POLICY', 'SCHED_FLAG_KEEP_PARAMS', 'SCHED_FLAG_UTIL_CLAMP_MIN', 'SCHED_FLAG_UTIL_CLAMP_MAX'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN, SCHED_FLAG_KEEP_POLICY, SCHED_FLAG_KEEP_PARAMS, SCHED_FLAG_UTIL_CLAMP_MIN, SCHED_FLAG_UTIL_CLAMP_MAX')


def _check_defs_GIDs(x, path):
    """defs.json#/definitions/GIDs"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(f"{path}[{i}]", 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(f"{path}[{i}]", f'{v} is out of range [0, 4294967295]')


def _check_features_linux_namespaces(x, path):
    """features-linux.json#/linux/properties/namespaces"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('mount', 'pid', 'network', 'uts', 'ipc', 'user', 'cgroup', 'time'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: mount, pid, network, uts, ipc, user, cgroup, time')


def _check_features_linux_cgroup(x, path):
    """features-linux.json#/linux/properties/cgroup"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'v1' in x:
        v = x['v1']
        if not isinstance(v, bool):
            _fail(path + '.v1', 'must be a boolean')
    if 'v2' in x:
        v = x['v2']
        if not isinstance(v, bool):
            _fail(path + '.v2', 'must be a boolean')
    if 'systemd' in x:
        v = x['systemd']
        if not isinstance(v, bool):
            _fail(path + '.systemd', 'must be a boolean')
    if 'systemdUser' in x:
        v = x['systemdUser']
        if not isinstance(v, bool):
            _fail(path + '.systemdUser', 'must be a boolean')
    if 'rdma' in x:
        v = x['rdma']
        if not isinstance(v, bool):
            _fail(path + '.rdma', 'must be a boolean')


def _check_features_linux_seccomp(x, path):
    """features-linux.json#/linux/properties/seccomp"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'enabled' in x:
        v = x['enabled']
        if not isinstance(v, bool):
            _fail(path + '.enabled', 'must be a boolean')
    if 'actions' in x:
        _check_features_linux_seccomp_actions(x['actions'], path + '.actions')
    if 'operators' in x:
        _check_features_linux_seccomp_operators(x['operators'], path + '.operators')
    if 'archs' in x:
        _check_features_linux_seccomp_archs(x['archs'], path + '.archs')
    if 'knownFlags' in x:
        _check_features_linux_seccomp_knownFlags(x['knownFlags'], path + '.knownFlags')
    if 'supportedFlags' in x:
        _check_features_linux_seccomp_supportedFlags(x['supportedFlags'], path + '.supportedFlags')


def _check_features_linux_Switch(x, path):
    """features-linux.json#/definitions/Switch"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'enabled' in x:
        v = x['enabled']
        if not isinstance(v, bool):
            _fail(path + '.enabled', 'must be a boolean')


def _check_features_linux_intelRdt(x, path):
    """features-linux.json#/linux/properties/intelRdt"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'enabled' in x:
        v = x['enabled']
        if not isinstance(v, bool):
            _fail(path + '.enabled', 'must be a boolean')
    if 'schemata' in x:
        v = x['schemata']
        if not isinstance(v, bool):
            _fail(path + '.schemata', 'must be a boolean')
    if 'monitoring' in x:
        v = x['monitoring']
        if not isinstance(v, bool):
            _fail(path + '.monitoring', 'must be a boolean')


def _check_features_linux_mountExtensions(x, path):
    """features-linux.json#/linux/properties/mountExtensions"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'idmap' in x:
        _check_features_linux_Switch(x['idmap'], path + '.idmap')


def _check_features_linux_memoryPolicy(x, path):
    """features-linux.json#/linux/properties/memoryPolicy"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'modes' in x:
        _check_features_linux_memoryPolicy_modes(x['modes'], path + '.modes')
    if 'flags' in x:
        _check_features_linux_memoryPolicy_flags(x['flags'], path + '.flags')


def _check_defs_Hook(x, path):
    """defs.json#/definitions/Hook"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'path' not in x:
        _fail(path + '.path', 'is required')
    if 'path' in x:
        v = x['path']
        if not isinstance(v, str):
            _fail(path + '.path', 'must be a string')
    if 'args' in x:
        _check_defs_Strings(x['args'], path + '.args')
    if 'env' in x:
        _check_defs_Strings(x['env'], path + '.env')
    if 'timeout' in x:
        v = x['timeout']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.timeout', 'must be an integer')
        if v < 1:
            _fail(path + '.timeout', f'{v} is less than the minimum 1')


def _check_defs_linux_Namespace(x, path):
    """defs-linux.json#/definitions/Namespace"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'type' not in x:
        _fail(path + '.type', 'is required')
    if 'type' in x:
        v = x['type']
        if not isinstance(v, str):
            _fail(path + '.type', 'must be a string')
        if v not in ('mount', 'pid', 'network', 'uts', 'ipc', 'user', 'cgroup', 'time'):
            _fail(path + '.type', show(v) + ' is not one of: mount, pid, network, uts, ipc, user, cgroup, time')
    if 'path' in x:
        v = x['path']
        if not isinstance(v, str):
            _fail(path + '.path', 'must be a string')


def _check_defs_IDMapping(x, path):
    """defs.json#/definitions/IDMapping"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'containerID' not in x:
        _fail(path + '.containerID', 'is required')
    if 'hostID' not in x:
        _fail(path + '.hostID', 'is required')
    if 'size' not in x:
        _fail(path + '.size', 'is required')
    if 'containerID' in x:
        v = x['containerID']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.containerID', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.containerID', f'{v} is out of range [0, 4294967295]')
    if 'hostID' in x:
        v = x['hostID']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.hostID', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.hostID', f'{v} is out of range [0, 4294967295]')
    if 'size' in x:
        v = x['size']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.size', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.size', f'{v} is out of range [0, 4294967295]')


def _check_defs_linux_TimeOffset(x, path):
    """defs-linux.json#/definitions/TimeOffset"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'secs' in x:
        v = x['secs']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.secs', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.secs', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'nanosecs' in x:
        v = x['nanosecs']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.nanosecs', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.nanosecs', f'{v} is out of range [0, 4294967295]')


def _check_defs_linux_Device(x, path):
    """defs-linux.json#/definitions/Device"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'type' not in x:
        _fail(path + '.type', 'is required')
    if 'path' not in x:
        _fail(path + '.path', 'is required')
    if 'type' in x:
        v = x['type']
        if not isinstance(v, str):
            _fail(path + '.type', 'must be a string')
        if v not in ('c', 'b', 'u', 'p'):
            _fail(path + '.type', show(v) + ' is not one of: c, b, u, p')
    if 'path' in x:
        v = x['path']
        if not isinstance(v, str):
            _fail(path + '.path', 'must be a string')
    if 'major' in x:
        v = x['major']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.major', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.major', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'minor' in x:
        v = x['minor']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.minor', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.minor', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'fileMode' in x:
        v = x['fileMode']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.fileMode', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.fileMode', f'{v} is out of range [0, 4294967295]')
    if 'uid' in x:
        v = x['uid']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.uid', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.uid', f'{v} is out of range [0, 4294967295]')
    if 'gid' in x:
        v = x['gid']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.gid', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.gid', f'{v} is out of range [0, 4294967295]')


def _check_defs_linux_NetDevice(x, path):
    """defs-linux.json#/definitions/NetDevice"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'name' in x:
        v = x['name']
        if not isinstance(v, str):
            _fail(path + '.name', 'must be a string')


def _check_config_linux_Resources_devices(x, path):
    """config-linux.json#/definitions/Resources/properties/devices"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_DeviceRule(v, f"{path}[{i}]")


def _check_config_linux_Resources_memory(x, path):
    """config-linux.json#/definitions/Resources/properties/memory"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'limit' in x:
        v = x['limit']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.limit', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.limit', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'reservation' in x:
        v = x['reservation']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.reservation', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.reservation', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'swap' in x:
        v = x['swap']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.swap', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.swap', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'kernel' in x:
        v = x['kernel']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.kernel', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.kernel', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'kernelTCP' in x:
        v = x['kernelTCP']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.kernelTCP', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.kernelTCP', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'swappiness' in x:
        v = x['swappiness']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.swappiness', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.swappiness', f'{v} is out of range [0, 18446744073709551615]')
    if 'disableOOMKiller' in x:
        v = x['disableOOMKiller']
        if not isinstance(v, bool):
            _fail(path + '.disableOOMKiller', 'must be a boolean')
    if 'useHierarchy' in x:
        v = x['useHierarchy']
        if not isinstance(v, bool):
            _fail(path + '.useHierarchy', 'must be a boolean')
    if 'checkBeforeUpdate' in x:
        v = x['checkBeforeUpdate']
        if not isinstance(v, bool):
            _fail(path + '.checkBeforeUpdate', 'must be a boolean')


def _check_config_linux_Resources_cpu(x, path):
    """config-linux.json#/definitions/Resources/properties/cpu"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'shares' in x:
        v = x['shares']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.shares', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.shares', f'{v} is out of range [0, 18446744073709551615]')
    if 'quota' in x:
        v = x['quota']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.quota', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.quota', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'burst' in x:
        v = x['burst']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.burst', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.burst', f'{v} is out of range [0, 18446744073709551615]')
    if 'period' in x:
        v = x['period']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.period', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.period', f'{v} is out of range [0, 18446744073709551615]')
    if 'realtimeRuntime' in x:
        v = x['realtimeRuntime']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.realtimeRuntime', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.realtimeRuntime', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'realtimePeriod' in x:
        v = x['realtimePeriod']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.realtimePeriod', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.realtimePeriod', f'{v} is out of range [0, 18446744073709551615]')
    if 'cpus' in x:
        v = x['cpus']
        if not isinstance(v, str):
            _fail(path + '.cpus', 'must be a string')
    if 'mems' in x:
        v = x['mems']
        if not isinstance(v, str):
            _fail(path + '.mems', 'must be a string')
    if 'idle' in x:
        v = x['idle']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.idle', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.idle', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')


def _check_config_linux_Resources_blockIO(x, path):
    """config-linux.json#/definitions/Resources/properties/blockIO"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'weight' in x:
        v = x['weight']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.weight', 'must be an integer')
        if not 0 <= v <= 65535:
            _fail(path + '.weight', f'{v} is out of range [0, 65535]')
    if 'leafWeight' in x:
        v = x['leafWeight']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.leafWeight', 'must be an integer')
        if not 0 <= v <= 65535:
            _fail(path + '.leafWeight', f'{v} is out of range [0, 65535]')
    if 'weightDevice' in x:
        _check_config_linux_Resources_blockIO_weightDevice(x['weightDevice'], path + '.weightDevice')
    if 'throttleReadBpsDevice' in x:
        _check_defs_linux_BlockIOThrottleDevices(x['throttleReadBpsDevice'], path + '.throttleReadBpsDevice')
    if 'throttleWriteBpsDevice' in x:
        _check_defs_linux_BlockIOThrottleDevices(x['throttleWriteBpsDevice'], path + '.throttleWriteBpsDevice')
    if 'throttleReadIOPSDevice' in x:
        _check_defs_linux_BlockIOThrottleDevices(x['throttleReadIOPSDevice'], path + '.throttleReadIOPSDevice')
    if 'throttleWriteIOPSDevice' in x:
        _check_defs_linux_BlockIOThrottleDevices(x['throttleWriteIOPSDevice'], path + '.throttleWriteIOPSDevice')


def _check_config_linux_Resources_hugepageLimits(x, path):
    """config-linux.json#/definitions/Resources/properties/hugepageLimits"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_HugepageLimit(v, f"{path}[{i}]")


def _check_config_linux_Resources_network(x, path):
    """config-linux.json#/definitions/Resources/properties/network"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'classID' in x:
        v = x['classID']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.classID', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.classID', f'{v} is out of range [0, 4294967295]')
    if 'priorities' in x:
        _check_config_linux_Resources_network_priorities(x['priorities'], path + '.priorities')


def _check_config_linux_Resources_pids(x, path):
    """config-linux.json#/definitions/Resources/properties/pids"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'limit' not in x:
        _fail(path + '.limit', 'is required')
    if 'limit' in x:
        v = x['limit']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.limit', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.limit', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')


def _check_config_linux_Resources_rdma(x, path):
    """config-linux.json#/definitions/Resources/properties/rdma"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    for key, v in x.items():
        _check_defs_linux_RdmaLimit(v, member_path(path, key))


def _check_config_linux_intelRdt_schemata(x, path):
    """config-linux.json#/linux/properties/intelRdt/properties/schemata"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if _RE_4.search(v) is None:
            _fail(f"{path}[{i}]", show(v) + ' does not match ^[^\\n]*$')


def _check_config_linux_seccomp_architectures(x, path):
    """config-linux.json#/linux/properties/seccomp/properties/architectures"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32, SCMP_ARCH_ARM, SCMP_ARCH_AARCH64, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PPC, SCMP_ARCH_PPC64, SCMP_ARCH_PPC64LE, SCMP_ARCH_S390, SCMP_ARCH_S390X, SCMP_ARCH_PARISC, SCMP_ARCH_PARISC64, SCMP_ARCH_RISCV64, SCMP_ARCH_LOONGARCH64, SCMP_ARCH_M68K, SCMP_ARCH_SH, SCMP_ARCH_SHEB')


def _check_config_linux_seccomp_flags(x, path):
    """config-linux.json#/linux/properties/seccomp/properties/flags"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV')


def _check_config_linux_seccomp_syscalls(x, path):
    """config-linux.json#/linux/properties/seccomp/properties/syscalls"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_Syscall(v, f"{path}[{i}]")


def _check_config_linux_memoryPolicy_flags(x, path):
    """config-linux.json#/linux/properties/memoryPolicy/properties/flags"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('MPOL_F_NUMA_BALANCING', 'MPOL_F_RELATIVE_NODES', 'MPOL_F_STATIC_NODES'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES')


def _check_features_linux_seccomp_actions(x, path):
    """features-linux.json#/linux/properties/seccomp/properties/actions"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY')


def _check_features_linux_seccomp_operators(x, path):
    """features-linux.json#/linux/properties/seccomp/properties/operators"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ')


def _check_features_linux_seccomp_archs(x, path):
    """features-linux.json#/linux/properties/seccomp/properties/archs"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32, SCMP_ARCH_ARM, SCMP_ARCH_AARCH64, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PPC, SCMP_ARCH_PPC64, SCMP_ARCH_PPC64LE, SCMP_ARCH_S390, SCMP_ARCH_S390X, SCMP_ARCH_PARISC, SCMP_ARCH_PARISC64, SCMP_ARCH_RISCV64, SCMP_ARCH_LOONGARCH64, SCMP_ARCH_M68K, SCMP_ARCH_SH, SCMP_ARCH_SHEB')


def _check_features_linux_seccomp_knownFlags(x, path):
    """features-linux.json#/linux/properties/seccomp/properties/knownFlags"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV')


def _check_features_linux_seccomp_supportedFlags(x, path):
    """features-linux.json#/linux/properties/seccomp/properties/supportedFlags"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV')


def _check_features_linux_memoryPolicy_modes(x, path):
    """features-linux.json#/linux/properties/memoryPolicy/properties/modes"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('MPOL_DEFAULT', 'MPOL_BIND', 'MPOL_INTERLEAVE', 'MPOL_WEIGHTED_INTERLEAVE', 'MPOL_PREFERRED', 'MPOL_PREFERRED_MANY', 'MPOL_LOCAL'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_LOCAL')


def _check_features_linux_memoryPolicy_flags(x, path):
    """features-linux.json#/linux/properties/memoryPolicy/properties/flags"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')
        if v not in ('MPOL_F_NUMA_BALANCING', 'MPOL_F_RELATIVE_NODES', 'MPOL_F_STATIC_NODES'):
            _fail(f"{path}[{i}]", show(v) + ' is not one of: MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES')


def _check_defs_linux_DeviceRule(x, path):
    """defs-linux.json#/definitions/DeviceRule"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'allow' not in x:
        _fail(path + '.allow', 'is required')
    if 'allow' in x:
        v = x['allow']
        if not isinstance(v, bool):
            _fail(path + '.allow', 'must be a boolean')
    if 'type' in x:
        v = x['type']
        if not isinstance(v, str):
            _fail(path + '.type', 'must be a string')
        if v not in ('a', 'c', 'b'):
            _fail(path + '.type', show(v) + ' is not one of: a, c, b')
    if 'major' in x:
        v = x['major']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.major', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.major', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'minor' in x:
        v = x['minor']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.minor', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.minor', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'access' in x:
        v = x['access']
        if not isinstance(v, str):
            _fail(path + '.access', 'must be a string')
        if _RE_5.search(v) is None:
            _fail(path + '.access', show(v) + ' does not match ^[rwm]*$')


def _check_config_linux_Resources_blockIO_weightDevice(x, path):
    """config-linux.json#/definitions/Resources/properties/blockIO/properties/weightDevice"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_BlockIOWeightDevice(v, f"{path}[{i}]")


def _check_defs_linux_BlockIOThrottleDevices(x, path):
    """defs-linux.json#/definitions/BlockIOThrottleDevices"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_BlockIOThrottleDevice(v, f"{path}[{i}]")


def _check_defs_linux_HugepageLimit(x, path):
    """defs-linux.json#/definitions/HugepageLimit"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'pageSize' not in x:
        _fail(path + '.pageSize', 'is required')
    if 'limit' not in x:
        _fail(path + '.limit', 'is required')
    if 'pageSize' in x:
        v = x['pageSize']
        if not isinstance(v, str):
            _fail(path + '.pageSize', 'must be a string')
        if _RE_6.search(v) is None:
            _fail(path + '.pageSize', show(v) + ' does not match ^[1-9][0-9]*[KMG]B$')
    if 'limit' in x:
        v = x['limit']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.limit', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.limit', f'{v} is out of range [0, 18446744073709551615]')


def _check_config_linux_Resources_network_priorities(x, path):
    """config-linux.json#/definitions/Resources/properties/network/properties/priorities"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_InterfacePriority(v, f"{path}[{i}]")


def _check_defs_linux_RdmaLimit(x, path):
    """defs-linux.json#/definitions/RdmaLimit"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'hcaHandles' in x:
        v = x['hcaHandles']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.hcaHandles', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.hcaHandles', f'{v} is out of range [0, 4294967295]')
    if 'hcaObjects' in x:
        v = x['hcaObjects']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.hcaObjects', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.hcaObjects', f'{v} is out of range [0, 4294967295]')


def _check_defs_linux_Syscall(x, path):
    """defs-linux.json#/definitions/Syscall"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'names' not in x:
        _fail(path + '.names', 'is required')
    if 'action' not in x:
        _fail(path + '.action', 'is required')
    if 'names' in x:
        _check_defs_linux_Syscall_names(x['names'], path + '.names')
    if 'action' in x:
        v = x['action']
        if not isinstance(v, str):
            _fail(path + '.action', 'must be a string')
        if v not in ('SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY'):
            _fail(path + '.action', show(v) + ' is not one of: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY')
    if 'errnoRet' in x:
        v = x['errnoRet']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.errnoRet', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.errnoRet', f'{v} is out of range [0, 4294967295]')
    if 'args' in x:
        _check_defs_linux_Syscall_args(x['args'], path + '.args')


def _check_defs_linux_BlockIOWeightDevice(x, path):
    """defs-linux.json#/definitions/BlockIOWeightDevice"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'major' not in x:
        _fail(path + '.major', 'is required')
    if 'minor' not in x:
        _fail(path + '.minor', 'is required')
    if 'major' in x:
        v = x['major']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.major', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.major', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'minor' in x:
        v = x['minor']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.minor', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.minor', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'weight' in x:
        v = x['weight']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.weight', 'must be an integer')
        if not 0 <= v <= 65535:
            _fail(path + '.weight', f'{v} is out of range [0, 65535]')
    if 'leafWeight' in x:
        v = x['leafWeight']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.leafWeight', 'must be an integer')
        if not 0 <= v <= 65535:
            _fail(path + '.leafWeight', f'{v} is out of range [0, 65535]')


def _check_defs_linux_BlockIOThrottleDevice(x, path):
    """defs-linux.json#/definitions/BlockIOThrottleDevice"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'major' not in x:
        _fail(path + '.major', 'is required')
    if 'minor' not in x:
        _fail(path + '.minor', 'is required')
    if 'rate' not in x:
        _fail(path + '.rate', 'is required')
    if 'major' in x:
        v = x['major']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.major', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.major', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'minor' in x:
        v = x['minor']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.minor', 'must be an integer')
        if not -9223372036854775808 <= v <= 9223372036854775807:
            _fail(path + '.minor', f'{v} is out of range [-9223372036854775808, 9223372036854775807]')
    if 'rate' in x:
        v = x['rate']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.rate', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.rate', f'{v} is out of range [0, 18446744073709551615]')


def _check_defs_linux_InterfacePriority(x, path):
    """defs-linux.json#/definitions/InterfacePriority"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'name' not in x:
        _fail(path + '.name', 'is required')
    if 'priority' not in x:
        _fail(path + '.priority', 'is required')
    if 'name' in x:
        v = x['name']
        if not isinstance(v, str):
            _fail(path + '.name', 'must be a string')
    if 'priority' in x:
        v = x['priority']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.priority', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.priority', f'{v} is out of range [0, 4294967295]')


def _check_defs_linux_Syscall_names(x, path):
    """defs-linux.json#/definitions/Syscall/properties/names"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    if len(x) < 1:
        _fail(path, 'must have at least 1 item(s)')
    for i, v in enumerate(x):
        if not isinstance(v, str):
            _fail(f"{path}[{i}]", 'must be a string')


def _check_defs_linux_Syscall_args(x, path):
    """defs-linux.json#/definitions/Syscall/properties/args"""
    if not isinstance(x, list):
        _fail(path, 'must be an array')
    for i, v in enumerate(x):
        _check_defs_linux_SyscallArg(v, f"{path}[{i}]")


def _check_defs_linux_SyscallArg(x, path):
    """defs-linux.json#/definitions/SyscallArg"""
    if not isinstance(x, dict):
        _fail(path, 'must be an object')
    if 'index' not in x:
        _fail(path + '.index', 'is required')
    if 'value' not in x:
        _fail(path + '.value', 'is required')
    if 'op' not in x:
        _fail(path + '.op', 'is required')
    if 'index' in x:
        v = x['index']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.index', 'must be an integer')
        if not 0 <= v <= 4294967295:
            _fail(path + '.index', f'{v} is out of range [0, 4294967295]')
    if 'value' in x:
        v = x['value']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.value', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.value', f'{v} is out of range [0, 18446744073709551615]')
    if 'valueTwo' in x:
        v = x['valueTwo']
        if not (isinstance(v, int) and not isinstance(v, bool)):
            _fail(path + '.valueTwo', 'must be an integer')
        if not 0 <= v <= 18446744073709551615:
            _fail(path + '.valueTwo', f'{v} is out of range [0, 18446744073709551615]')
    if 'op' in x:
        v = x['op']
        if not isinstance(v, str):
            _fail(path + '.op', 'must be a string')
        if v not in ('SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'):
            _fail(path + '.op', show(v) + ' is not one of: SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ')
