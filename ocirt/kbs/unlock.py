"""``ocirt-kbs unlock``: the guest side of a confidential workload.

Inside the TEE (what libkrun's C init did before libkrunfw-sev 5.0 dropped
it; confidential-workloads.md §0, §10):

1. read the workload config from the disk footer (confidential-workloads.md §4);
2. auth → evidence → attest → key against the KBS (attestation.md §2);
3. decrypt the passphrase with the ephemeral RSA key;
4. ``cryptsetup open`` the LUKS disk, mount it, move it to ``/`` and chroot;
5. exec the workload described by the disk's ``/.krun_config.json``.

``--check-only`` stops after checking the passphrase against the LUKS header
(``cryptsetup open --test-passphrase``), which needs no device-mapper.
"""
import http.client
import json
import os
import ssl
import subprocess
import urllib.parse

from ocirt.errors import OcirtError
from ocirt.kbs import protocol

FOOTER_MAGIC = b"KRUN"
FOOTER_MAX = 1 << 20  # buildah's ReadWorkloadConfigFromImage rejects larger configs
MAPPER_NAME = "luksroot"
LUKS_MOUNT = "/luksroot"


def read_footer(disk):
    """The krun-sev.json workload config stored at the end of ``disk``.

    Layout (confidential-workloads.md §4): ``JSON ‖ "KRUN" ‖ u64 LE len(JSON)``
    as the file's (or block device's) last bytes.
    """
    try:
        fd = os.open(disk, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OcirtError(f"{disk}: {e.strerror}") from None
    try:
        size = os.lseek(fd, 0, os.SEEK_END)  # also right for block devices
        if size < 12:
            raise OcirtError(f"{disk}: too small to hold a workload footer")
        tail = os.pread(fd, 12, size - 12)
        if tail[:4] != FOOTER_MAGIC:
            raise OcirtError(f"{disk}: no workload footer (missing 'KRUN' magic 12 bytes before the end)")
        length = int.from_bytes(tail[4:], "little")
        if length == 0 or length > FOOTER_MAX or length > size - 12:
            raise OcirtError(f"{disk}: workload footer length {length} is out of range")
        raw = os.pread(fd, length, size - 12 - length)
    finally:
        os.close(fd)
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise OcirtError(f"{disk}: workload footer is not valid JSON") from None
    if not isinstance(config, dict):
        raise OcirtError(f"{disk}: workload footer must be a JSON object")
    for field in ("workload_id", "tee", "attestation_url"):
        if not isinstance(config.get(field), str):
            raise OcirtError(f"{disk}: workload footer: field {field!r} must be a string")
    return config


def footer_gen(config):
    """SNP generation from tee_data ``{"gen":"milan"}`` (a JSON string; confidential-workloads.md §3)."""
    tee_data = config.get("tee_data") or "{}"
    try:
        data = json.loads(tee_data) if isinstance(tee_data, str) else tee_data
    except ValueError:
        raise OcirtError("workload footer: tee_data is not a JSON string") from None
    gen = (data or {}).get("gen", "milan") if isinstance(data, dict) else "milan"
    return str(gen).lower()


class KbsClient:
    """The libkrun guest client's three requests, over one keep-alive connection."""

    def __init__(self, url, cafile=None, timeout=30.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise OcirtError(f"attestation_url {url!r}: expected http(s)://host[:port]")
        self.base = parsed.path.rstrip("/") + protocol.PREFIX
        if parsed.scheme == "https":
            ctx = ssl.create_default_context(cafile=cafile)
            self.conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=timeout, context=ctx)
        else:
            self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
        self.url = url
        self.cookie = None

    def _request(self, method, path, body=None):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if self.cookie:
            headers["Cookie"] = f"{protocol.SESSION_COOKIE}={self.cookie}"
        try:
            self.conn.request(method, self.base + path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read(1 << 20)
        except (OSError, http.client.HTTPException) as e:
            raise OcirtError(f"KBS {self.url}: {method} {path}: {e}") from None
        for header in resp.headers.get_all("Set-Cookie") or ():
            name, _, rest = header.partition("=")
            if name.strip() == protocol.SESSION_COOKIE:
                self.cookie = rest.split(";", 1)[0].strip()
        if resp.status != 200:
            reason = data.decode(errors="replace").strip() or resp.reason
            raise OcirtError(f"KBS {self.url}: {path} refused ({resp.status}): {reason}")
        return data

    def fetch_passphrase(self, workload_id, provider):
        """auth → evidence → attest → key; returns the decrypted passphrase bytes."""
        try:
            return self._flow(workload_id, provider)
        finally:
            self.conn.close()

    def _flow(self, workload_id, provider):
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        challenge = self._request("POST", "/auth", protocol.auth_request(workload_id, provider.tee))
        try:
            nonce = json.loads(challenge)["nonce"]
            if not isinstance(nonce, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise OcirtError(f"KBS {self.url}: auth: the challenge has no nonce") from None
        if not self.cookie:
            raise OcirtError(f"KBS {self.url}: auth: no {protocol.SESSION_COOKIE} cookie in the response")
        key = rsa.generate_private_key(65537, 2048)  # ephemeral: lives only for this exchange
        numbers = key.public_key().public_numbers()
        k_mod, k_exp = protocol.b64_uint(numbers.n), protocol.b64_uint(numbers.e)
        report = provider.report(protocol.binding_hash(nonce, k_mod, k_exp))
        body = self._request("POST", "/attest",
                             protocol.attest_request(k_mod, k_exp, provider.gen, report, provider.cert_chain()))
        if body.strip():  # like libkrun's client: any body from attest is an error message
            raise OcirtError(f"KBS {self.url}: attest: {body.decode(errors='replace').strip()}")
        sealed = self._request("GET", f"/key/{urllib.parse.quote(workload_id, safe='')}")
        try:
            return key.decrypt(bytes.fromhex(json.loads(sealed)), padding.PKCS1v15())
        except (ValueError, TypeError):
            raise OcirtError(f"KBS {self.url}: key: the response is not a hex JSON string "
                             "sealed to our key") from None


def _cryptsetup(args, passphrase, what):
    try:
        res = subprocess.run(["cryptsetup", *args, "--key-file=-"], input=passphrase,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    except FileNotFoundError:
        raise OcirtError("cryptsetup: not found in PATH") from None
    if res.returncode != 0:
        msg = " ".join(res.stderr.decode(errors="replace").split()) or f"exit status {res.returncode}"
        if res.returncode == 2:
            msg = "the passphrase from the KBS does not open this disk (" + msg + ")"
        raise OcirtError(f"{what}: {msg}")


def check_passphrase(disk, passphrase):
    _cryptsetup(["open", "--test-passphrase", disk], passphrase, f"cryptsetup open --test-passphrase {disk}")


def open_disk(disk, passphrase, name=MAPPER_NAME):
    _cryptsetup(["open", disk, name], passphrase, f"cryptsetup open {disk} {name}")
    return f"/dev/mapper/{name}"


def workload_process(krun_config):
    """argv, env, cwd of the workload from a /.krun_config.json object.

    buildah stores the whole OCI image object there (config.Entrypoint/Cmd/
    Env/WorkingDir; confidential-workloads.md §7); keys at top level or under
    ``process`` (crun's shape) are accepted too.
    """
    if not isinstance(krun_config, dict):
        raise OcirtError("/.krun_config.json: must be a JSON object")
    section = krun_config.get("config")
    if not isinstance(section, dict):
        section = krun_config.get("process") if isinstance(krun_config.get("process"), dict) else krun_config
    if "args" in section:  # OCI runtime process shape
        argv = section.get("args") or []
    else:
        argv = (section.get("Entrypoint") or []) + (section.get("Cmd") or [])
    if not argv or not all(isinstance(a, str) for a in argv):
        raise OcirtError("/.krun_config.json: no command (config.Entrypoint/Cmd) to run")
    env = {}
    for item in section.get("Env") or section.get("env") or []:
        if isinstance(item, str) and "=" in item:
            k, v = item.split("=", 1)
            env[k] = v
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    cwd = section.get("WorkingDir") or section.get("cwd") or "/"
    return argv, env, cwd


def mount_and_exec(device):  # pragma: no cover - needs a TEE guest with device-mapper
    """Mount the opened disk as ext4 on /luksroot, then switch to it and run the workload."""
    from ocirt.linux._libc import ffi, lib
    os.makedirs(LUKS_MOUNT, exist_ok=True)
    if lib.mount(device.encode(), LUKS_MOUNT.encode(), b"ext4", 0, ffi.NULL) != 0:
        raise OcirtError(f"mount {device} on {LUKS_MOUNT}: {os.strerror(ffi.errno)}")
    switch_root_and_exec(LUKS_MOUNT)


def switch_root_and_exec(new_root):
    """Make the mount at ``new_root`` the root (MS_MOVE onto / and chroot, as libkrun's
    init and switch_root do) and exec the workload from its /.krun_config.json."""
    from ocirt.linux._libc import ffi, lib
    # carry the initrd's /dev, /proc, /sys, /run over into the new root
    for api_fs in ("/dev", "/proc", "/sys", "/run"):
        target = new_root + api_fs
        if os.path.ismount(api_fs) and os.path.isdir(target):
            lib.mount(api_fs.encode(), target.encode(), ffi.NULL, lib.MS_MOVE, ffi.NULL)  # best effort
    os.chdir(new_root)
    if lib.mount(b".", b"/", ffi.NULL, lib.MS_MOVE, ffi.NULL) != 0:
        raise OcirtError(f"moving {new_root} to /: {os.strerror(ffi.errno)}")
    os.chroot(".")
    os.chdir("/")
    try:
        with open("/.krun_config.json") as f:
            krun_config = json.load(f)
    except (OSError, ValueError) as e:
        raise OcirtError(f"/.krun_config.json: {e}") from None
    argv, env, cwd = workload_process(krun_config)
    try:
        os.chdir(cwd)
    except OSError as e:
        raise OcirtError(f"/.krun_config.json: WorkingDir {cwd}: {e.strerror}") from None
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        raise OcirtError(f"exec {argv[0]}: {e.strerror}") from None


def unlock(disk, *, evidence="auto", cafile=None, url=None, check_only=False, sample_chain=None,
           sample_measurement=None, timeout=30.0):
    from ocirt.kbs import evidence as providers
    config = read_footer(disk)
    url = url or config["attestation_url"]
    if not url:
        raise OcirtError(f"{disk}: the workload footer has no attestation_url and none was given (--url)")
    if config["tee"] not in ("snp", "sample") and evidence != "sample":
        raise OcirtError(f"{disk}: tee {config['tee']!r} is not supported by ocirt-kbs unlock (SEV-SNP only)")
    measurement = bytes.fromhex(sample_measurement) if sample_measurement else None
    provider = providers.select(evidence, footer_gen(config), sample_chain, measurement)
    passphrase = KbsClient(url, cafile, timeout).fetch_passphrase(config["workload_id"], provider)
    if check_only:
        check_passphrase(disk, passphrase)
        return f"{disk}: the passphrase from the KBS opens the LUKS header"
    device = open_disk(disk, passphrase)
    mount_and_exec(device)
