"""vCPU signatures (CPUID Fn0000_0001_EAX) as QEMU passes them in RDX at reset."""


def cpu_sig(family, model, stepping):
    """Encode family/model/stepping the way CPUID leaf 1 EAX reports them
    (AMD CPUID specification #25481: extended family/model fields)."""
    for name, value, top in (("family", family, 0xFF + 0xF), ("model", model, 0xFF), ("stepping", stepping, 0xF)):
        if not 0 <= value <= top:
            raise ValueError(f"vcpu {name} {value} out of range")
    base_family, ext_family = (0xF, family - 0xF) if family > 0xF else (family, 0)
    return (ext_family << 20) | ((model >> 4) << 16) | (base_family << 8) | ((model & 0xF) << 4) | stepping


_GENERATIONS = {  # QEMU CPU model names (builtin_x86_defs) → (family, model, stepping)
    ("EPYC", "EPYC-v1", "EPYC-v2", "EPYC-IBPB", "EPYC-v3", "EPYC-v4"): (23, 1, 2),
    ("EPYC-Rome", "EPYC-Rome-v1", "EPYC-Rome-v2", "EPYC-Rome-v3"): (23, 49, 0),
    ("EPYC-Milan", "EPYC-Milan-v1", "EPYC-Milan-v2"): (25, 1, 1),
    ("EPYC-Genoa", "EPYC-Genoa-v1"): (25, 17, 0),
    ("EPYC-Turin",): (26, 0, 0),
}
CPU_SIGS = {name: cpu_sig(*fms) for names, fms in _GENERATIONS.items() for name in names}
