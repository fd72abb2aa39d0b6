"""The workload config (``krun-sev.json``), its launch measurement, and registration.

Formats follow confidential-workloads.md §3 and §9 (buildah's
``types.WorkloadConfig`` = libkrun's ``TeeConfig``) and the reference-kbs
``register_workload`` endpoint (attestation.md §1).
"""
import json
import os
import re

from ocirt.errors import OcirtError

TEE_TYPES = ("snp", "sev", "tdx")

# sev-crate policy flag bits that buildah registers (confidential-workloads.md §9)
_SEV_POLICY_BITS = 63       # NO_DEBUG|NO_KEY_SHARING|ENCRYPTED_STATE|NO_SEND|DOMAIN|SEV
_SNP_POLICY_BITS = 15       # SMT|MANDATORY|MIGRATE_MA|DEBUG (reference-kbs ignores it for SNP)

# buildah registers the SNP digest for snp and the SEV-ES one for sev (confidential-workloads.md §9)
_MEASURE_MODES = {"snp": "snp", "sev": "seves"}
# hex digits of each TEE's launch digest: SNP SHA-384, SEV-ES SHA-256
_MEASUREMENT_HEX = {"snp": 96, "sev": 64}


def tee_data(tee):
    if tee == "snp":
        return json.dumps({"gen": "milan"}, separators=(",", ":"))
    if tee == "sev":
        return json.dumps({"vendor_chain": "", "attestation_server_pubkey": ""}, separators=(",", ":"))
    return ""      # tdx: libkrun's TDX path takes no tee_data (unverified against a TDX host)


def workload_json(tee, workload_id, cpus, ram_mib, attestation_url):
    """krun-sev.json bytes: Go marshal order, compact, no trailing newline."""
    obj = {"tee": tee, "tee_data": tee_data(tee), "workload_id": workload_id, "cpus": cpus,
           "ram_mib": ram_mib, "attestation_url": attestation_url or ""}
    return json.dumps(obj, separators=(",", ":")).encode()


def tee_config(tee):
    """The ``tee_config`` string registered with the workload."""
    bits = _SNP_POLICY_BITS if tee == "snp" else _SEV_POLICY_BITS
    return json.dumps({"flags": {"bits": bits}, "minfw": {"major": 0, "minor": 0}}, separators=(",", ":"))


def check_measurement(value, tee):
    """Validate ``--launch-measurement``; returns it lowercased."""
    value = value.strip().lower()
    want = _MEASUREMENT_HEX.get(tee)
    if not re.fullmatch(r"[0-9a-f]+", value or "-"):
        raise OcirtError("--launch-measurement: not a hex string")
    if want and len(value) != want:
        raise OcirtError(f"--launch-measurement: a {tee} launch digest has {want} hex digits, got {len(value)}")
    return value


def measure(firmware_library, tee, cpus, ram_mib):
    """The launch measurement of libkrunfw ``firmware_library`` for this VM shape.

    The measurement code belongs to ocirt.kbs (attestation.md §9.3:
    ``ocirt.kbs.measure.libkrun_launch_digest(path, cpus, ram_mib, mode=)``);
    it is imported only when asked for, so ocirt-mkcw works without it.
    """
    instead = "pass --launch-measurement HEX instead"
    try:
        from ocirt.kbs import measure as kbs_measure
    except ImportError:
        raise OcirtError(f"--firmware-library: the ocirt measurement code (ocirt.kbs.measure) is not installed; "
                         f"{instead}") from None
    digest = getattr(kbs_measure, "libkrun_launch_digest", None)
    if digest is None:
        raise OcirtError(f"--firmware-library: ocirt.kbs.measure cannot measure libkrun guests; {instead}")
    if tee not in _MEASURE_MODES:
        raise OcirtError(f"--firmware-library: launch digests of libkrun {tee} guests cannot be computed; {instead}")
    if not os.path.isfile(firmware_library):
        raise OcirtError(f"--firmware-library: {firmware_library}: no such file")
    try:
        value = digest(firmware_library, cpus, ram_mib, mode=_MEASURE_MODES[tee])
    except OcirtError as e:
        raise OcirtError(f"--firmware-library: {e}") from None
    except ImportError:
        raise OcirtError(f"--firmware-library: this ocirt.kbs.measure has no libkrun support yet; {instead}") from None
    except OSError as e:
        raise OcirtError(f"--firmware-library: {firmware_library}: {e.strerror or e}") from None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).hex()
    if not value:
        raise OcirtError(f"--firmware-library: no launch measurement computed for {firmware_library}")
    return check_measurement(value, tee)


def check_url(url, allow_insecure):
    """The passphrase travels in the registration body: insist on https off loopback."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OcirtError(f"--attestation-url: {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not allow_insecure and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise OcirtError(f"--attestation-url: {url!r} would send the passphrase in clear text; "
                         "use https (or --insecure-http to allow it)")
    return url


def _opener(url, ca_file):
    import ssl
    import urllib.request
    from urllib.parse import urlsplit
    handlers = [urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file))]
    if urlsplit(url).hostname in ("127.0.0.1", "::1", "localhost"):
        handlers.append(urllib.request.ProxyHandler({}))    # never send loopback traffic to a proxy
    return urllib.request.build_opener(*handlers)


def register(url, workload_id, launch_measurement, passphrase, tee, token=None, timeout=30.0, ca_file=None):
    """POST the workload to ``<url>/kbs/v0/register_workload``; raise OcirtError unless 200/202."""
    import ssl
    import urllib.error
    import urllib.request
    if not launch_measurement:
        raise OcirtError("refusing to register an empty launch measurement")
    endpoint = url.rstrip("/") + "/kbs/v0/register_workload"
    body = json.dumps({"workload_id": workload_id, "launch_measurement": launch_measurement,
                       "passphrase": passphrase.decode(), "tee_config": tee_config(tee)},
                      separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        opener = _opener(url, ca_file)
    except (OSError, ssl.SSLError) as e:
        raise OcirtError(f"--attestation-ca: {ca_file}: {getattr(e, 'strerror', None) or e}") from None
    try:
        with opener.open(request, timeout=timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as e:
        raise OcirtError(f"registering workload at {endpoint}: server replied {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise OcirtError(f"registering workload at {endpoint}: {reason}") from None
    if status not in (200, 202):
        raise OcirtError(f"registering workload at {endpoint}: server replied {status}")
