"""linux.resources.devices: v1 devices cgroup rules, v2 eBPF device filter.

v1: exactly the configured rules are written, in order, to devices.allow /
devices.deny.  Nothing is added: runc appends its own default rules (the
/dev/null… allow list and "c *:* m"/"b *:* m"), which is why runtime-tools'
linux_cgroups_devices, reading devices.list back, sees more than it
configured and fails with runc; crun writes only the configured rules and
passes.  Clients (podman, containerd) send the default device rules
explicitly in config.json, so nothing is lost.

v2 has no devices files: a BPF_PROG_TYPE_CGROUP_DEVICE program, generated
here from the rules, is loaded with bpf(BPF_PROG_LOAD) and attached to the
cgroup (BPF_F_ALLOW_MULTI).  Rules are evaluated last-to-first and the first
match decides, which gives OCI's "later entries win" meaning; no match denies.
On update the new program is attached before the old ones are detached, so
there is no window without a filter.
"""
import errno
import os

from ocirt.errors import ConfigError, OcirtError

_ACCESS = "rwm"


def _rules(devices):
    """Validated (allow, type, major, minor, access) tuples; major/minor None = any."""
    if not isinstance(devices, list):
        raise ConfigError("config.json: linux.resources.devices: must be an array")
    out = []
    for i, rule in enumerate(devices):
        field = f"config.json: linux.resources.devices[{i}]"
        if not isinstance(rule, dict) or not isinstance(rule.get("allow"), bool):
            raise ConfigError(f"{field}.allow: required boolean")
        dev_type = rule.get("type") or "a"
        if dev_type not in ("a", "b", "c"):
            raise ConfigError(f"{field}.type: must be a, b or c, not {dev_type!r}")
        numbers = []
        for name in ("major", "minor"):
            value = rule.get(name)
            if value is None or value == -1:
                numbers.append(None)
            elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < (1 << 32):
                numbers.append(value)
            else:
                raise ConfigError(f"{field}.{name}: must be a device number or -1")
        access = rule.get("access") or _ACCESS
        if not isinstance(access, str) or not access or any(c not in _ACCESS for c in access):
            raise ConfigError(f"{field}.access: must be a combination of r, w and m")
        access = "".join(c for c in _ACCESS if c in access)
        out.append((rule["allow"], dev_type, numbers[0], numbers[1], access))
    return out


def v1_rule_text(dev_type, major, minor, access):
    num = lambda n: "*" if n is None else str(n)  # noqa: E731
    return f"{dev_type} {num(major)}:{num(minor)} {access}"


def apply_device_rules(manager, devices, writer):
    rules = _rules(devices)
    directory = manager.path("devices") if manager.mode != "v2" else None
    if directory:
        for allow, dev_type, major, minor, access in rules:
            writer.write("devices", directory, "devices.allow" if allow else "devices.deny",
                         v1_rule_text(dev_type, major, minor, access))
        return
    if not manager.unified:
        raise OcirtError("linux.resources.devices: neither a v1 devices hierarchy nor cgroup v2 is available")
    attach_filter(manager.unified, rules)


# ------------------------------------------------------------------------ eBPF

def build_program(rules):
    """The instruction list for ``rules`` as (code, dst, src, off, imm) tuples."""
    from ocirt.linux._libc import ffi, lib
    ctx = "struct bpf_cgroup_dev_ctx"
    ldx_w = lib.BPF_LDX | lib.BPF_W | lib.BPF_MEM
    alu_k = lambda op: lib.BPF_ALU | op | lib.BPF_K  # noqa: E731  (32-bit ALU zero-extends)
    jne_k = lib.BPF_JMP | lib.BPF_JNE | lib.BPF_K
    jne_x = lib.BPF_JMP | lib.BPF_JNE | lib.BPF_X
    mov_r0 = lib.BPF_ALU64 | lib.BPF_MOV | lib.BPF_K
    exit_ = lib.BPF_JMP | lib.BPF_EXIT
    # r2 = device type, r3 = requested access, r4 = major, r5 = minor
    prog = [
        (ldx_w, 2, 1, ffi.offsetof(ctx, "access_type"), 0),
        (alu_k(lib.BPF_AND), 2, 0, 0, 0xFFFF),
        (ldx_w, 3, 1, ffi.offsetof(ctx, "access_type"), 0),
        (alu_k(lib.BPF_RSH), 3, 0, 0, 16),
        (ldx_w, 4, 1, ffi.offsetof(ctx, "major"), 0),
        (ldx_w, 5, 1, ffi.offsetof(ctx, "minor"), 0),
    ]
    type_bits = {"c": lib.BPF_DEVCG_DEV_CHAR, "b": lib.BPF_DEVCG_DEV_BLOCK}
    access_bits = {"r": lib.BPF_DEVCG_ACC_READ, "w": lib.BPF_DEVCG_ACC_WRITE, "m": lib.BPF_DEVCG_ACC_MKNOD}
    for allow, dev_type, major, minor, access in reversed(rules):
        # Each test jumps past the rest of this rule's block when it fails.
        tests = []
        if dev_type != "a":
            tests.append([(jne_k, 2, 0, None, type_bits[dev_type])])
        if access != _ACCESS:
            mask = sum(access_bits[c] for c in access)
            tests.append([(lib.BPF_ALU | lib.BPF_MOV | lib.BPF_X, 1, 3, 0, 0),
                          (alu_k(lib.BPF_AND), 1, 0, 0, mask),
                          (jne_x, 1, 3, None, 0)])
        if major is not None:
            tests.append([(jne_k, 4, 0, None, major)])
        if minor is not None:
            tests.append([(jne_k, 5, 0, None, minor)])
        block = [insn for test in tests for insn in test] + [(mov_r0, 0, 0, 0, 1 if allow else 0), (exit_, 0, 0, 0, 0)]
        for index, (code, dst, src, off, imm) in enumerate(block):
            if off is None:
                block[index] = (code, dst, src, len(block) - index - 1, imm)
        prog.extend(block)
        if dev_type == "a" and major is None and minor is None and access == _ACCESS:
            break  # a catch-all: earlier rules can never be reached
    else:
        prog += [(mov_r0, 0, 0, 0, 0), (exit_, 0, 0, 0, 0)]
    return prog


def attach_filter(cgroup_dir, rules):
    from ocirt.linux._libc import ffi, lib
    prog = build_program(rules)
    insns = ffi.new("struct bpf_insn[]", len(prog))
    for i, (code, dst, src, off, imm) in enumerate(prog):
        insn = insns[i]
        insn.code, insn.dst_reg, insn.src_reg, insn.off = code, dst, src, off
        insn.imm = imm - (1 << 32) if imm >= (1 << 31) else imm
    log = ffi.new("char[]", 65536)
    prog_fd = lib.ocirt_bpf_devcg_load(insns, len(prog), log, 65536)
    if prog_fd < 0:
        err = ffi.errno
        detail = ffi.string(log).decode(errors="replace").strip().splitlines()
        raise OcirtError("linux.resources.devices: the kernel refused the eBPF device filter "
                         f"(bpf BPF_PROG_LOAD: {os.strerror(err)}{': ' + detail[-1] if detail else ''})")
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            old = _attached(cgroup_fd)
            if lib.ocirt_bpf_devcg_attach(cgroup_fd, prog_fd) < 0:
                raise OcirtError("linux.resources.devices: the kernel refused to attach the eBPF device filter "
                                 f"to {cgroup_dir} (bpf BPF_PROG_ATTACH: {os.strerror(ffi.errno)})")
            for prog_id in old:
                if lib.ocirt_bpf_devcg_detach(cgroup_fd, prog_id) < 0 and ffi.errno != errno.ENOENT:
                    raise OcirtError(f"linux.resources.devices: cannot detach the previous device filter "
                                     f"(id {prog_id}) from {cgroup_dir}: {os.strerror(ffi.errno)}")
        finally:
            os.close(cgroup_fd)
    finally:
        os.close(prog_fd)


def _attached(cgroup_fd):
    from ocirt.linux._libc import ffi, lib
    count = ffi.new("uint32_t *", 64)
    ids = ffi.new("uint32_t[]", 64)
    if lib.ocirt_bpf_devcg_query(cgroup_fd, ids, count) < 0:
        return []
    return [ids[i] for i in range(min(count[0], 64))]


def attached_program_ids(cgroup_dir):
    """Ids of the device filters attached directly to ``cgroup_dir`` (for tests and stats)."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _attached(fd)
    finally:
        os.close(fd)
