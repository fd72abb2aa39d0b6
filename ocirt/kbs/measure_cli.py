"""ocirt-kbs measure: print the expected launch digest of a SEV/SEV-ES/SEV-SNP guest.

Options follow sev-snp-measure (QEMU/OVMF guests):
    ocirt-kbs measure --mode snp --vcpus 1 --vcpu-type EPYC-v4 --ovmf OVMF.fd
                      [--kernel K --initrd I --append CMDLINE] [--guest-features 0x1]
                      [--vmm-type qemu|ec2|gce] [--ovmf-hash HEX] [--output-format hex|base64]
    ocirt-kbs measure --mode snp:ovmf-hash --ovmf OVMF.fd
and for libkrun guests (what `buildah mkcw` / ocirt-mkcw workloads run in):
    ocirt-kbs measure --mode snp --libkrunfw libkrunfw-sev.so --vcpus 2 --ram-mib 2048
                      [--vmsa-bp FILE --vmsa-ap FILE]
"""
import sys

PROG = "ocirt-kbs measure"


def _int0(text):
    return int(text, 0)


def _parser():
    import argparse
    from ocirt.kbs.measure.cpu import CPU_SIGS
    p = argparse.ArgumentParser(prog=PROG, description="Calculate a SEV/SEV-ES/SEV-SNP launch digest.")
    p.add_argument("--mode", choices=("snp", "seves", "sev", "snp:ovmf-hash"), default="snp")
    p.add_argument("--vcpus", type=int, metavar="N")
    p.add_argument("--vcpu-type", metavar="CPUTYPE", choices=sorted(CPU_SIGS), help="QEMU CPU model, e.g. EPYC-v4")
    p.add_argument("--vcpu-sig", type=_int0, metavar="VALUE", help="CPUID signature value")
    p.add_argument("--vcpu-family", type=int, metavar="N")
    p.add_argument("--vcpu-model", type=int, metavar="N")
    p.add_argument("--vcpu-stepping", type=int, metavar="N")
    p.add_argument("--vmm-type", choices=("qemu", "ec2", "gce"), default="qemu")
    p.add_argument("--ovmf", metavar="PATH", help="OVMF firmware image")
    p.add_argument("--kernel", metavar="PATH")
    p.add_argument("--initrd", metavar="PATH")
    p.add_argument("--append", metavar="CMDLINE")
    p.add_argument("--guest-features", type=_int0, default=0x1, metavar="VALUE",
                   help="SEV_FEATURES of the VMSAs (default 0x1, SNP active)")
    p.add_argument("--ovmf-hash", "--snp-ovmf-hash", dest="ovmf_hash", metavar="HEX",
                   help="precomputed OVMF digest (snp:ovmf-hash output) to start from")
    p.add_argument("--output-format", choices=("hex", "base64"), default="hex")
    p.add_argument("--libkrunfw", metavar="PATH", help="measure a libkrun guest booting this libkrunfw-sev")
    p.add_argument("--ram-mib", type=int, metavar="N", help="libkrun guest RAM in MiB")
    p.add_argument("--vmsa-bp", metavar="FILE", help="libkrun: exact 4096-byte boot vCPU VMSA image")
    p.add_argument("--vmsa-ap", metavar="FILE", help="libkrun: exact 4096-byte application vCPU VMSA image")
    return p


def run(args, out, err):
    from ocirt.errors import OcirtError
    from ocirt.kbs import measure
    if args.libkrunfw:
        if args.mode == "snp:ovmf-hash" or args.ovmf:
            raise OcirtError("--libkrunfw measures a libkrun guest: --ovmf/--mode snp:ovmf-hash do not apply")
        if args.vcpus is None or args.ram_mib is None:
            raise OcirtError("--libkrunfw needs --vcpus and --ram-mib")
        if args.mode != "sev" and not (args.vmsa_bp and (args.vmsa_ap or args.vcpus == 1)):
            from ocirt.kbs.measure import libkrun
            if not libkrun.default_vmsas_verified:
                err.write(f"{PROG}: warning: using built-in libkrun VMSA images that were not verified against "
                          "real hardware; pass --vmsa-bp/--vmsa-ap for a production registration\n")
        digest = measure.libkrun_launch_digest(args.libkrunfw, args.vcpus, args.ram_mib, mode=args.mode,
                                               vmsa_bp=args.vmsa_bp, vmsa_ap=args.vmsa_ap,
                                               sev_features=args.guest_features)
    else:
        if not args.ovmf:
            raise OcirtError("--ovmf is required (or --libkrunfw for a libkrun guest)")
        if args.mode == "snp:ovmf-hash":
            digest = measure.ovmf_hash(args.ovmf)
        else:
            if args.mode != "sev" and args.vcpus is None:
                raise OcirtError(f"--vcpus is required in mode {args.mode}")
            sig = args.vcpu_sig
            if args.vcpu_family is not None:
                if args.vcpu_model is None or args.vcpu_stepping is None:
                    raise OcirtError("--vcpu-family needs --vcpu-model and --vcpu-stepping")
                try:
                    sig = measure.cpu_sig(args.vcpu_family, args.vcpu_model, args.vcpu_stepping)
                except ValueError as e:
                    raise OcirtError(str(e)) from None
            if args.ovmf_hash and args.mode != "snp":
                raise OcirtError("--ovmf-hash only applies to --mode snp")
            common = dict(kernel=args.kernel, initrd=args.initrd, append=args.append)
            if args.mode == "snp":
                digest = measure.snp_launch_digest(args.ovmf, args.vcpus, args.vcpu_type, sig, args.vmm_type,
                                                   guest_features=args.guest_features, ovmf_hash=args.ovmf_hash,
                                                   **common)
            elif args.mode == "seves":
                digest = measure.seves_launch_digest(args.ovmf, args.vcpus, args.vcpu_type, sig, args.vmm_type,
                                                     **common)
            else:
                digest = measure.sev_launch_digest(args.ovmf, **common)
    if args.output_format == "base64":
        import base64
        out.write(base64.b64encode(digest).decode() + "\n")
    else:
        out.write(digest.hex() + "\n")
    return 0


def main(argv=None):
    from ocirt.errors import OcirtError
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args, sys.stdout, sys.stderr)
    except OcirtError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
