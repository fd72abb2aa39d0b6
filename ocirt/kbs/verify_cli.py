"""ocirt-kbs verify-report: check one SEV-SNP report and print every verdict.

    ocirt-kbs verify-report --report FILE [--vcek FILE] [--chain FILE]
                            [--product milan|genoa|turin] [--cache-dir DIR] [--kds-url URL]
                            [--report-data HEX | --nonce N --k-mod B64 --k-exp B64]
                            [--measurement HEX] [--allow-debug] [--json]

Exit status 0 when every check passes, 1 otherwise (including unreadable input).
"""
import sys

PROG = "ocirt-kbs verify-report"


def _parser():
    import argparse
    p = argparse.ArgumentParser(prog=PROG, description="Verify an AMD SEV-SNP attestation report.")
    p.add_argument("--report", required=True, metavar="FILE", help="report: 1184 raw bytes or hex text")
    p.add_argument("--vcek", metavar="FILE", help="VCEK certificate (DER or PEM)")
    p.add_argument("--chain", metavar="FILE", help="ASK+ARK PEM as AMD KDS serves it (default: shipped roots)")
    p.add_argument("--product", choices=("milan", "genoa", "turin"), help="processor line (default: guessed)")
    p.add_argument("--cache-dir", metavar="DIR", help="VCEK cache directory (looked up when --vcek is absent)")
    p.add_argument("--kds-url", metavar="URL", help="AMD KDS base URL to download a missing VCEK from, "
                   "e.g. https://kdsintf.amd.com")
    p.add_argument("--report-data", metavar="HEX", help="expected report_data (up to 64 bytes, zero-padded)")
    p.add_argument("--nonce", help="expected binding: the KBS nonce (with --k-mod/--k-exp)")
    p.add_argument("--k-mod", metavar="B64", help="the TEE RSA key modulus, base64 as sent")
    p.add_argument("--k-exp", metavar="B64", help="the TEE RSA key exponent, base64 as sent")
    p.add_argument("--measurement", metavar="HEX", help="expected launch measurement (48 bytes)")
    p.add_argument("--allow-debug", action="store_true", help="do not fail on the DEBUG policy bit")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p


def _read(path, what, limit=1 << 20):
    from ocirt.errors import OcirtError
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise OcirtError(f"{what} {path}: {e.strerror}") from None
    if len(data) > limit:
        raise OcirtError(f"{what} {path}: larger than {limit} bytes")
    return data


def _hex_arg(value, what, size=None):
    from ocirt.errors import OcirtError
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise OcirtError(f"--{what}: not hex") from None
    if size is not None and len(raw) != size:
        raise OcirtError(f"--{what}: expected {size} bytes, got {len(raw)}")
    return raw


def run(args, out):
    from ocirt.errors import OcirtError
    from ocirt.kbs import snp
    report = snp.parse_report(snp.decode_report_text(_read(args.report, "--report")))
    vcek = _read(args.vcek, "--vcek") if args.vcek else None
    chain = _read(args.chain, "--chain") if args.chain else None
    expected_rd = None
    if args.report_data and args.nonce:
        raise OcirtError("give either --report-data or --nonce/--k-mod/--k-exp, not both")
    if args.report_data:
        expected_rd = _hex_arg(args.report_data, "report-data")
        if len(expected_rd) > 64:
            raise OcirtError("--report-data: longer than 64 bytes")
    elif args.nonce is not None or args.k_mod or args.k_exp:
        if args.nonce is None or not args.k_mod or not args.k_exp:
            raise OcirtError("--nonce, --k-mod and --k-exp go together")
        expected_rd = snp.expected_report_data(args.nonce, args.k_mod, args.k_exp)
    measurement = _hex_arg(args.measurement, "measurement", 48) if args.measurement else None
    result = snp.verify(report, vcek, chain, args.product, expected_report_data=expected_rd,
                        expected_measurement=measurement, cache_dir=args.cache_dir, kds_url=args.kds_url)
    checks = list(result.checks) + snp.policy_checks(report, allow_debug=args.allow_debug,
                                                     product=result.product)
    ok = all(passed for _, passed, _ in checks) and result.ok
    fields = report.fields(result.product)
    if args.json:
        import json
        out.write(json.dumps({"ok": ok, "product": result.product, "fields": fields,
                              "checks": [{"name": n, "passed": p, "detail": d} for n, p, d in checks]},
                             indent=2) + "\n")
    else:
        out.write("report:\n")
        width = max(map(len, fields))
        for name, value in fields.items():
            out.write(f"  {name:<{width}}  {value}\n")
        out.write("checks:\n")
        width = max(len(n) for n, _, _ in checks)
        for name, passed, detail in checks:
            out.write(f"  {'PASS' if passed else 'FAIL'}  {name:<{width}}  {detail}\n")
        out.write(f"result: {'OK' if ok else 'FAILED'}\n")
    return 0 if ok else 1


def main(argv=None):
    from ocirt.errors import OcirtError
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args, sys.stdout)
    except OcirtError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
