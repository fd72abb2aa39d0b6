"""``ocirt-mkcw [options] SOURCE DEST``: the command line of the converter.

Options mirror ``buildah mkcw`` (confidential-workloads.md §1); the extras
are the ocirt attestation server's credential, an explicit launch
measurement, LUKS2 and the key-derivation time.
"""
import argparse
import os
import signal
import sys

from ocirt.errors import OcirtError

DESCRIPTION = """Convert a container image into a confidential workload image: the image's
files in a LUKS-encrypted ext4 disk (/disk.img), a krun TEE config
(/krun-sev.json) and an /entrypoint that refuses to run outside libkrun.

SOURCE: a podman image (name or ID), an OCI layout directory, an OCI archive,
or a root filesystem directory.  Prefixes force the kind: oci:DIR[:REF],
oci-archive:FILE[:REF], dir:DIR, containers-storage:NAME.
DEST: a podman image name (default), oci:DIR (new OCI layout directory) or
oci-archive:FILE (new OCI archive)."""

EPILOG = """At least one of --attestation-url or --passphrase is required.  With
--attestation-url the workload is registered (POST <url>/kbs/v0/register_workload)
with its launch measurement, which comes from --firmware-library or
--launch-measurement; an empty measurement is never registered."""


def _positive_int(text):
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line, like every other ocirt-mkcw error (argparse would add the usage)."""
        self.exit(2, f"ocirt-mkcw: {message} (see --help)\n")


def build_parser():
    p = _Parser(prog="ocirt-mkcw", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="image to convert")
    p.add_argument("dest", metavar="DEST", help="where to write the confidential workload image")
    p.add_argument("-t", "--type", default="snp", metavar="TYPE",
                   help="TEE type: snp (default), sev or tdx; case-insensitive")
    p.add_argument("-u", "--attestation-url", default="", metavar="URL",
                   help="attestation server (KBS) to register the workload with; https unless loopback")
    p.add_argument("-p", "--passphrase", metavar="TEXT",
                   help="LUKS passphrase (visible to other users in ps: prefer --passphrase-file); "
                        "default with --attestation-url: 32 random bytes as hex, sent only to the server")
    p.add_argument("--passphrase-file", metavar="FILE",
                   help="read the passphrase from FILE ('-' for stdin); one trailing newline is dropped")
    p.add_argument("-c", "--cpus", type=_positive_int, metavar="N",
                   help="vCPUs of the TEE VM (default 2, 1 for tdx; part of the launch measurement)")
    p.add_argument("-m", "--memory", type=_positive_int, metavar="MIB",
                   help="memory of the TEE VM in MiB (default 512; part of the launch measurement)")
    p.add_argument("-w", "--workload-id", metavar="ID",
                   help="workload id registered with the server (default: random 64 hex chars)")
    p.add_argument("-s", "--slop", default="25%", metavar="SPEC",
                   help="extra room in the disk: '+'-separated terms, N%% (at most 127%%) or a size "
                        "like 512MB; default 25%%; the disk is at least 10 MiB")
    p.add_argument("-f", "--firmware-library", metavar="PATH",
                   help="libkrunfw-sev/-tdx library whose launch measurement is registered")
    p.add_argument("--launch-measurement", metavar="HEX",
                   help="launch measurement to register (96 hex digits for snp, 64 for sev)")
    p.add_argument("--add-file", action="append", default=[], metavar="SRC[:DEST]",
                   help="add a file (0644, root-owned) to the image next to disk.img, NOT encrypted; repeatable")
    p.add_argument("--attestation-token", metavar="TOKEN",
                   help="admin token for the ocirt attestation server (sent as Authorization: Bearer); "
                        "default $OCIRT_KBS_ADMIN_TOKEN")
    p.add_argument("--attestation-token-file", metavar="FILE", help="read the admin token from FILE")
    p.add_argument("--attestation-ca", metavar="FILE",
                   help="PEM CA bundle to verify an https attestation server (default: the system's)")
    p.add_argument("--insecure-http", action="store_true",
                   help="allow a plain-http attestation URL that is not loopback (sends the passphrase in clear)")
    p.add_argument("--luks-version", type=_positive_int, default=1, metavar="1|2",
                   help="LUKS1 (default, as buildah writes it) or LUKS2")
    p.add_argument("--kdf-seconds", type=float, default=1.0, metavar="SEC",
                   help="PBKDF2 cost of the key slot in seconds on this host (default 1, as buildah)")
    return p


class _Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupt(signum, frame):
    raise _Interrupted(signum)


def _read_secret_file(path, what):
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read(1 << 16)
    except OSError as e:
        raise OcirtError(f"--{what}-file: {path}: {e.strerror}") from None
    if data.endswith(b"\n"):
        data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
    if not data:
        raise OcirtError(f"--{what}-file: {path}: empty")
    return data


def options_from_args(args):
    from ocirt.mkcw.convert import Options
    if args.passphrase is not None and args.passphrase_file:
        raise OcirtError("give either --passphrase or --passphrase-file, not both")
    passphrase = (args.passphrase.encode() if args.passphrase is not None
                  else _read_secret_file(args.passphrase_file, "passphrase") if args.passphrase_file else None)
    if args.attestation_token and args.attestation_token_file:
        raise OcirtError("give either --attestation-token or --attestation-token-file, not both")
    token = args.attestation_token
    if args.attestation_token_file:
        try:
            token = _read_secret_file(args.attestation_token_file, "attestation-token").decode()
        except UnicodeDecodeError:
            raise OcirtError(f"--attestation-token-file: {args.attestation_token_file}: not text") from None
    token = token or os.environ.get("OCIRT_KBS_ADMIN_TOKEN") or None
    if token and any(c in token for c in "\r\n"):
        raise OcirtError("attestation token: must be a single line")
    return Options(args.source, args.dest, tee=args.type, attestation_url=args.attestation_url,
                   passphrase=passphrase, cpus=args.cpus, memory=args.memory, workload_id=args.workload_id,
                   slop=args.slop, firmware_library=args.firmware_library,
                   launch_measurement=args.launch_measurement, add_files=args.add_file,
                   luks_version=args.luks_version, token=token, insecure_http=args.insecure_http,
                   kdf_seconds=args.kdf_seconds, ca_file=args.attestation_ca)


def main(argv=None):
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _raise_interrupt)
    try:
        from ocirt.mkcw.convert import convert
        from ocirt.mkcw.progress import Progress
        opts = options_from_args(args)
        result = convert(opts, Progress())
    except OcirtError as e:
        print(f"ocirt-mkcw: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:              # disk full, permissions, ...: one line, everything already undone
        where = f"{e.filename}: " if e.filename else ""
        print(f"ocirt-mkcw: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except _Interrupted as e:
        print(f"ocirt-mkcw: interrupted by {signal.Signals(e.signum).name}; nothing was written", file=sys.stderr)
        return 128 + e.signum
    print(result["image_id"] if opts.dest_kind == "podman" else result["manifest"])
    return 0
