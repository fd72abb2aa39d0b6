"""The ``ocirt-kbs`` command: one verb per job, each imported only when used.

  serve            run the key broker (reference-kbs protocol, hardened)
  unlock           guest side: attest, fetch the passphrase, open the disk, run the workload
  register         admin: register (or replace) a workload on a server
  delete-workload  admin: remove a workload and its sessions
  sample-chain     write a SOFTWARE sample ARK/ASK/VCEK chain for development
  verify-report    check an SNP report and its certificate chain
  measure          compute an SEV/SNP launch digest
"""
import os
import sys

from ocirt.errors import OcirtError

PROG = "ocirt-kbs"
ADMIN_TOKEN_ENV = "OCIRT_KBS_ADMIN_TOKEN"


def _read_secret_file(path, what):
    try:
        with open(path, "rb") as f:
            data = f.read(65536)
    except OSError as e:
        raise OcirtError(f"{what} {path}: {e.strerror}") from None
    text = data.decode(errors="strict").strip() if data else ""
    if not text:
        raise OcirtError(f"{what} {path}: empty")
    return text


def _admin_token(args, required):
    if args.admin_token_file:
        return _read_secret_file(args.admin_token_file, "--admin-token-file")
    token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if not token and required:
        raise OcirtError(f"an admin token is needed: --admin-token-file FILE or ${ADMIN_TOKEN_ENV}")
    return token or None


def _parser(verb):
    import argparse
    p = argparse.ArgumentParser(prog=f"{PROG} {verb}")
    if verb == "serve":
        p.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT (port 0 picks a free one)")
        p.add_argument("--db", default="/var/lib/ocirt-kbs/kbs.db",
                       help="SQLite file, or postgresql://... shared by replicas")
        p.add_argument("--secret-key-file", help="32-byte key sealing passphrases at rest (default: <db>.key, "
                                                 "created if missing); required with PostgreSQL")
        p.add_argument("--admin-token-file", help=f"file holding the admin bearer token (or ${ADMIN_TOKEN_ENV})")
        p.add_argument("--open-registration", action="store_true",
                       help="INSECURE: let anyone register workloads, like reference-kbs (unmodified buildah mkcw)")
        p.add_argument("--tls-cert")
        p.add_argument("--tls-key")
        p.add_argument("--session-ttl", type=float, default=300.0, help="seconds a session lives (default 300)")
        p.add_argument("--max-body", type=int, default=64 * 1024, help="largest request body in bytes")
        p.add_argument("--allow-sample-evidence", metavar="CHAIN_DIR",
                       help="accept SOFTWARE sample evidence signed by this sample chain (development only)")
        p.add_argument("--amd-roots", metavar="DIR",
                       help="replace the shipped AMD roots with DIR/<product>/{ark,ask}.pem (private test PKI)")
        p.add_argument("--vcek-cache", metavar="DIR", help="directory of cached VCEK certificates")
        p.add_argument("--kds-url", help="AMD KDS base URL to fetch VCEKs from")
        p.add_argument("--min-tcb", help="server-wide minimum TCB, e.g. bootloader=3,tee=0,snp=8,microcode=115")
        p.add_argument("--audit-log", help="append audit lines (JSON) here instead of stderr")
        p.add_argument("--workers", type=int, default=1, help="worker processes sharing the socket")
        p.add_argument("--verifiers", type=int, default=None,
                       help="report verifier processes beside each worker (default: 1 when the machine has "
                            "more CPUs than workers, else 0; 0 verifies in the worker itself)")
    elif verb == "unlock":
        p.add_argument("--disk", default="/dev/vda", help="the workload disk (default /dev/vda)")
        p.add_argument("--evidence", default="auto", choices=["auto", "tsm", "sev-guest", "sample"])
        p.add_argument("--url", help="override the footer's attestation_url")
        p.add_argument("--cacert", help="CA bundle for an https KBS")
        p.add_argument("--check-only", action="store_true",
                       help="stop after checking the passphrase against the LUKS header")
        p.add_argument("--sample-chain", metavar="DIR", help="sample evidence: the chain made by sample-chain")
        p.add_argument("--sample-measurement", metavar="HEX", help="sample evidence: the measurement to claim")
        p.add_argument("--timeout", type=float, default=30.0)
    elif verb in ("register", "delete-workload"):
        p.add_argument("--url", required=True, help="KBS base URL, e.g. https://kbs.example:8000")
        p.add_argument("--admin-token-file", help=f"file holding the admin bearer token (or ${ADMIN_TOKEN_ENV})")
        p.add_argument("--cacert", help="CA bundle for an https KBS")
        p.add_argument("--workload-id", required=True)
        if verb == "register":
            p.add_argument("--launch-measurement", required=True, help="96 hex characters (SNP)")
            p.add_argument("--passphrase-file", required=True)
            p.add_argument("--tee-config", default="")
            p.add_argument("--allow-debug", action="store_true", help="accept guests whose policy allows DEBUG")
            p.add_argument("--min-tcb", help="e.g. bootloader=3,tee=0,snp=8,microcode=115")
    elif verb == "sample-chain":
        p.add_argument("directory")
        p.add_argument("--rsa-bits", type=int, default=4096)
    return p


def _split_listen(value):
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise OcirtError(f"--listen {value!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def cmd_serve(argv):
    args = _parser("serve").parse_args(argv)
    try:
        from ocirt.kbs.server import ServerConfig, serve
    except ImportError as e:
        if e.name != "aiohttp":
            raise
        raise OcirtError("the aiohttp package is not installed (pip install aiohttp)") from None
    host, port = _split_listen(args.listen)
    secret_key_file = args.secret_key_file
    if not secret_key_file:
        if args.db.startswith(("postgres://", "postgresql://")):
            raise OcirtError("--secret-key-file is required with a PostgreSQL database (all replicas share it)")
        secret_key_file = args.db + ".key"
    if not args.db.startswith(("postgres://", "postgresql://")):
        parent = os.path.dirname(os.path.abspath(args.db))
        if not os.path.isdir(parent):
            raise OcirtError(f"--db {args.db}: directory {parent} does not exist")
    config = ServerConfig(db=args.db, secret_key_file=secret_key_file, host=host, port=port,
                          admin_token=_admin_token(args, required=False), open_registration=args.open_registration,
                          tls_cert=args.tls_cert, tls_key=args.tls_key, session_ttl=args.session_ttl,
                          max_body=args.max_body, allow_sample_evidence=args.allow_sample_evidence,
                          amd_roots=args.amd_roots, vcek_cache=args.vcek_cache, kds_url=args.kds_url,
                          min_tcb=args.min_tcb, audit_log=args.audit_log, workers=args.workers,
                          verifiers=args.verifiers)
    if config.admin_token_digest is None and not config.open_registration:
        print(f"{PROG}: warning: no admin token: registration and deletion are disabled", file=sys.stderr)
    return serve(config)


def cmd_unlock(argv):
    args = _parser("unlock").parse_args(argv)
    from ocirt.kbs.unlock import unlock
    message = unlock(args.disk, evidence=args.evidence, cafile=args.cacert, url=args.url,
                     check_only=args.check_only, sample_chain=args.sample_chain,
                     sample_measurement=args.sample_measurement, timeout=args.timeout)
    if message:
        print(message)
    return 0


def _admin_call(args, method, path, body=None):
    import http.client
    import ssl
    import urllib.parse
    from ocirt.kbs.protocol import PREFIX
    url = urllib.parse.urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise OcirtError(f"--url {args.url!r}: expected http(s)://host[:port]")
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30,
                                           context=ssl.create_default_context(cafile=args.cacert))
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Authorization": f"Bearer {_admin_token(args, required=True)}", "Content-Type": "application/json"}
    try:
        conn.request(method, url.path.rstrip("/") + PREFIX + path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read(65536).decode(errors="replace").strip()
    except (OSError, http.client.HTTPException) as e:
        raise OcirtError(f"KBS {args.url}: {e}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise OcirtError(f"KBS {args.url}: {method} {path} refused ({resp.status}): {text or resp.reason}")
    return text


def cmd_register(argv):
    import json
    args = _parser("register").parse_args(argv)
    body = {"workload_id": args.workload_id, "launch_measurement": args.launch_measurement,
            "tee_config": args.tee_config, "passphrase": _read_secret_file(args.passphrase_file, "--passphrase-file")}
    if args.allow_debug:
        body["allow_debug"] = True
    if args.min_tcb:
        from ocirt.kbs.protocol import ProtocolError, parse_min_tcb
        try:
            body["min_tcb"] = parse_min_tcb(args.min_tcb, "--min-tcb")
        except ProtocolError as e:
            raise OcirtError(str(e)) from None
    _admin_call(args, "POST", "/register_workload", json.dumps(body).encode())
    print(f"registered workload {args.workload_id}")
    return 0


def cmd_delete(argv):
    import urllib.parse
    args = _parser("delete-workload").parse_args(argv)
    _admin_call(args, "DELETE", "/workload/" + urllib.parse.quote(args.workload_id, safe=""))
    print(f"deleted workload {args.workload_id}")
    return 0


def cmd_sample_chain(argv):
    args = _parser("sample-chain").parse_args(argv)
    from ocirt.kbs import sample
    sample.make_chain(args.directory, rsa_bits=args.rsa_bits)
    print(f"SAMPLE (software, not AMD) chain written to {args.directory}: ark.pem ask.pem vcek.der vcek.key.pem")
    return 0


def _delegate(module):
    def run(argv):
        import importlib
        return importlib.import_module(module).main(argv)
    return run


VERBS = {
    "serve": cmd_serve,
    "unlock": cmd_unlock,
    "register": cmd_register,
    "delete-workload": cmd_delete,
    "sample-chain": cmd_sample_chain,
    "verify-report": _delegate("ocirt.kbs.verify_cli"),
    "measure": _delegate("ocirt.kbs.measure_cli"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        verbs = __doc__.split("\n\n", 1)[1].rstrip()
        print(f"usage: {PROG} VERB [options]   ({PROG} VERB --help for a verb's options)\n\n{verbs}",
              file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    run = VERBS.get(verb)
    if run is None:
        print(f"{PROG}: unknown verb {verb!r} (expected one of: {', '.join(VERBS)})", file=sys.stderr)
        return 2
    try:
        return run(rest) or 0
    except OcirtError as e:
        print(f"{PROG} {verb}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
