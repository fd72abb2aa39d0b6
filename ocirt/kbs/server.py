"""``ocirt-kbs serve``: a reference-kbs compatible key broker (aiohttp).

Wire protocol: ``ocirt.kbs.protocol`` (attestation.md §1, §2).  What this
server adds over virtee/reference-kbs (attestation.md §11):

* ``register_workload`` and ``DELETE workload/<id>`` need the admin bearer
  token (only its SHA-256 is kept in memory; compared in constant time);
  ``--open-registration`` restores reference-kbs's unauthenticated
  registration for unmodified ``buildah mkcw`` and says so in the log;
* passphrases are sealed at rest (``storage.SecretKey``);
* a session's nonce is single-use — it is burnt by the first ``attest``,
  successful or not — sessions expire, and an attested session releases its
  key once, and only for the workload it attested as;
* SNP policy: DEBUG refused unless the registration sets ``allow_debug``;
  optional minimum TCB (server-wide ``--min-tcb`` and per workload);
* one audit line (JSON) for every release and every refusal, with its reason.

Errors are plain-text bodies with a 4xx status, like reference-kbs's
``attest`` errors (libkrun's client treats any body from ``attest`` as an error).
"""
import asyncio
import base64
import gc
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import struct
import sys
import time

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ocirt.errors import OcirtError
from ocirt.kbs import protocol
from ocirt.kbs.protocol import PREFIX, SESSION_COOKIE, ProtocolError
from ocirt.kbs.pool import HelperGone, ProcessPool
from ocirt.kbs.storage import (SESSION_ATTESTED, SESSION_NEW, SESSION_RELEASED, SESSION_USED, Session, SecretKey,
                               SessionLimit, Workload, is_postgres, open_storage)

POLICY_DEBUG = 1 << 19          # SNP guest policy bit 19 (attestation.md §6)
# TCB_VERSION byte positions (attestation.md §6)
TCB_LAYOUT = {
    "milan": {"bootloader": 0, "tee": 1, "snp": 6, "microcode": 7},
    "genoa": {"bootloader": 0, "tee": 1, "snp": 6, "microcode": 7},
    "turin": {"fmc": 0, "bootloader": 1, "tee": 2, "snp": 3, "microcode": 7},
}
PURGE_GRACE = 120.0             # seconds an expired session is kept before it is deleted
PURGE_INTERVAL = 1.0            # seconds between purges of expired sessions
SAMPLE_PRODUCT = "milan"        # sample reports use Milan's TCB layout (ocirt.kbs.sample)


class Refusal(Exception):
    """A request the server refuses: HTTP status + the one-line reason sent back and audited."""

    def __init__(self, status, reason, workload_id=None):
        super().__init__(reason)
        self.status, self.reason, self.workload_id = status, reason, workload_id


class ServerConfig:
    def __init__(self, *, db, secret_key_file, host="127.0.0.1", port=8000, admin_token=None,
                 open_registration=False, tls_cert=None, tls_key=None, session_ttl=300.0, max_body=64 * 1024,
                 allow_sample_evidence=None, amd_roots=None, vcek_cache=None, kds_url=None, min_tcb=None,
                 audit_log=None, workers=1, verifiers=None):
        self.db, self.secret_key_file, self.host, self.port = db, secret_key_file, host, port
        # only a digest of the admin token stays in memory
        self.admin_token_digest = hashlib.sha256(admin_token.encode()).digest() if admin_token else None
        self.open_registration = open_registration
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.session_ttl, self.max_body = float(session_ttl), int(max_body)
        self.allow_sample_evidence = allow_sample_evidence  # a sample chain dir (ark.pem, ask.pem) or None
        self.amd_roots = amd_roots      # dir of <product>/{ark,ask}.pem replacing the shipped AMD roots
        self.vcek_cache, self.kds_url = vcek_cache, kds_url
        self.min_tcb = protocol.parse_min_tcb(min_tcb, "--min-tcb") if isinstance(min_tcb, str) else min_tcb
        self.audit_log, self.workers = audit_log, int(workers)
        # report verifier processes beside each worker; None: one when a CPU is left over
        self.verifiers = int(verifiers) if verifiers is not None else (1 if _usable_cpus() > self.workers else 0)


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Audit:
    """One JSON line per decision; never passphrases, never whole session ids."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600) if path else 2

    def __call__(self, event, request, *, status=200, workload_id=None, session_id=None, reason=None):
        # the same line json.dumps makes of {"time", "event", "status", "endpoint", "peer"[,
        # "workload_id"][, "session"][, "reason"]}, built directly (two lines per flow)
        js = _json_value
        line = (f'{{"time": {round(time.time(), 3)!r}, "event": {js(event)}, "status": {int(status)}, '
                f'"endpoint": {js(request.path if request is not None else None)}, '
                f'"peer": {js(request.remote if request is not None else None)}')
        if workload_id is not None:
            line += f', "workload_id": {js(workload_id)}'
        if session_id:
            # the session id is the bearer of an attested session: log a digest only
            line += f', "session": "{hashlib.sha256(session_id.encode()).hexdigest()[:16]}"'
        if reason:
            line += f', "reason": {js(reason)}'
        try:
            os.write(self.fd, (line + "}\n").encode())
        except OSError:
            pass


_quote = json.encoder.encode_basestring_ascii


def _json_value(value):
    if value is None:
        return "null"
    if type(value) is str:
        return _quote(value)
    return json.dumps(value)


def _load_roots(directory):
    """{product: ARK+ASK PEM} from <dir>/<product>/{ark,ask}.pem, or {"*": ...} from <dir>/{ark,ask}.pem."""
    roots = {}
    for product in ("milan", "genoa", "turin", ""):
        base = os.path.join(directory, product)
        try:
            with open(os.path.join(base, "ark.pem"), "rb") as f:
                ark = f.read()
            with open(os.path.join(base, "ask.pem"), "rb") as f:
                ask = f.read()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise OcirtError(f"{base}: {e.strerror}") from None
        roots[product or "*"] = ark + ask
    if not roots:
        raise OcirtError(f"{directory}: no ark.pem/ask.pem (or <product>/ark.pem, ask.pem) found")
    return roots


def _roots_for(roots, product):
    """trusted_roots for snp.verify: None means the AMD roots shipped with ocirt."""
    if roots is None:
        return None
    pem = roots.get(product) or roots.get("*")
    if pem is None:
        raise Refusal(403, f"attestation refused: no trusted roots configured for {product}")
    return {product: pem}


def tcb_parts(raw, product):
    return {name: raw[pos] for name, pos in TCB_LAYOUT[product].items()}


class Verifier:
    """Evidence → accept or Refusal, using ocirt.kbs.snp plus the server's policy."""

    def __init__(self, config):
        from ocirt.kbs import snp  # noqa: F401 (imported once at start, not per request)
        self.snp = snp
        self.config = config
        self.amd_roots = _load_roots(config.amd_roots) if config.amd_roots else None
        self.sample_roots = (_load_roots(config.allow_sample_evidence)
                             if config.allow_sample_evidence else None)

    def check(self, session, workload, att, nonce):
        snp = self.snp
        if session.tee == protocol.SAMPLE_TEE or att.gen == protocol.SAMPLE_TEE:
            if self.sample_roots is None:
                raise Refusal(403, "attestation refused: sample (software) evidence is not accepted; "
                                   "the server was not started with --allow-sample-evidence")
            if session.tee != protocol.SAMPLE_TEE or att.gen != protocol.SAMPLE_TEE:
                raise Refusal(400, "attest: sample evidence needs tee 'sample' at auth and gen 'sample'")
            product, roots = SAMPLE_PRODUCT, _roots_for(self.sample_roots, SAMPLE_PRODUCT)
        else:
            if att.gen not in protocol.SNP_GENERATIONS:
                raise Refusal(400, f"attest: unknown SNP generation {att.gen!r} "
                                   f"(expected one of {', '.join(protocol.SNP_GENERATIONS)})")
            product, roots = att.gen, _roots_for(self.amd_roots, att.gen)
        if not workload.launch_measurement:
            raise Refusal(403, "attestation refused: workload was registered without a launch measurement")
        try:
            report = snp.parse_report(att.report)
        except snp.ReportError as e:
            raise Refusal(400, f"attest: bad report: {e}") from None
        expected = snp.expected_report_data(nonce, att.k_mod, att.k_exp)
        try:
            result = snp.verify(report, att.cert_chain, None, product, expected_report_data=expected,
                                expected_measurement=bytes.fromhex(workload.launch_measurement),
                                cache_dir=self.config.vcek_cache, kds_url=self.config.kds_url,
                                trusted_roots=roots)
        except OcirtError as e:  # e.g. an unusable VCEK cache: refuse with the reason, keep serving
            raise Refusal(403, f"attestation refused: {e}") from None
        if not result.ok:
            raise Refusal(403, f"attestation refused: {result.first_failure()}")
        self.check_policy(att.report, product, workload)

    def check_plain(self, tee, gen, report, cert_chain, k_mod, k_exp, nonce, launch_measurement, allow_debug,
                    min_tcb):
        """``check`` on plain values, as run in a verifier process: None, or (status, reason) refused."""
        try:
            self.check(Session(nonce, None, tee, SESSION_USED, 0.0),
                       Workload(None, launch_measurement, "", b"", allow_debug, min_tcb),
                       protocol.Attestation(k_mod, k_exp, gen, report, cert_chain), nonce)
        except Refusal as r:
            return r.status, r.reason
        return None

    def check_policy(self, raw, product, workload):
        # Read from the signed bytes directly (attestation.md §6): policy u64 at 0x008,
        # reported_tcb at 0x180 (the TCB the VCEK is bound to).
        (policy,) = struct.unpack_from("<Q", raw, 0x008)
        if policy & POLICY_DEBUG and not workload.allow_debug:
            raise Refusal(403, f"attestation refused: guest policy {policy:#x} allows DEBUG and the "
                               "registration does not set allow_debug")
        tcb = tcb_parts(raw[0x180:0x188], product)
        for minimum in (self.config.min_tcb, workload.min_tcb):
            for part, low in (minimum or {}).items():
                if part in tcb and tcb[part] < low:
                    raise Refusal(403, f"attestation refused: reported TCB {part}={tcb[part]} is below "
                                       f"the minimum {low}")


class KBS:
    def __init__(self, config, storage=None, verifier_pool=None):
        self.config = config
        # verifier processes (ProcessPool running Verifier.check_plain), or None: verify here
        self.verifier_pool = verifier_pool
        # one process alone on an SQLite database keeps sessions in memory (no database write per
        # flow); several workers, or replicas on PostgreSQL, share them through the database
        self.storage = storage or open_storage(
            config.db, sessions="memory" if config.workers <= 1 and not is_postgres(config.db) else "database")
        self.secret_key = SecretKey.from_file(config.secret_key_file)
        self.audit = Audit(config.audit_log)
        self.verifier = Verifier(config)

    # --- plumbing --------------------------------------------------------------

    async def _body(self, request):
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refusal(413, f"request body larger than {self.config.max_body} bytes") from None

    @staticmethod
    def _cookie(request):
        sid = request.cookies.get(SESSION_COOKIE)
        if not sid:
            raise Refusal(401, f"no {SESSION_COOKIE} cookie: call {PREFIX}/auth first")
        return sid

    def _why_refused(self, sid, now, step, workload_id=None):
        """The Refusal explaining why a guarded session transition did not happen."""
        session = self.storage.get_session(sid)
        if session is None:
            return Refusal(401, "unknown session: call auth again")
        wid = session.workload_id
        if session.expires_at <= now:
            return Refusal(401, "session expired: call auth again", wid)
        if step == "attest":
            return Refusal(401, "nonce already used: this session has attested before; call auth again", wid)
        if session.state == SESSION_RELEASED:
            return Refusal(401, "the key was already released to this session; attest again", wid)
        if session.state != SESSION_ATTESTED:
            return Refusal(401, "session is not attested: call attest first", wid)
        return Refusal(403, f"session attested workload {wid!r}, not {workload_id!r}", wid)

    def _require_admin(self, request):
        if self.config.open_registration:
            return
        if self.config.admin_token_digest is None:
            raise Refusal(403, "administration is disabled: the server has no admin token")
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(401, "admin credential required: Authorization: Bearer <token>")
        digest = hashlib.sha256(token.strip().encode()).digest()
        if not hmac.compare_digest(digest, self.config.admin_token_digest):
            raise Refusal(403, "admin credential rejected")

    @web.middleware
    async def refusals(self, request, handler):
        try:
            return await handler(request)
        except Refusal as r:
            self.audit("refuse", request, status=r.status, workload_id=r.workload_id,
                       session_id=request.cookies.get(SESSION_COOKIE), reason=r.reason)
            return web.Response(status=r.status, text=r.reason + "\n")
        except web.HTTPException as e:
            if e.status >= 400:
                self.audit("refuse", request, status=e.status, reason=e.reason)
            raise
        except Exception as e:  # a bug: answer 500, keep serving, leave a trace in the audit log
            self.audit("error", request, status=500, reason=f"{type(e).__name__}: {e}")
            return web.Response(status=500, text="internal error\n")

    # --- protocol ----------------------------------------------------------------

    async def root(self, request):
        raise Refusal(401, "unauthorized")

    async def auth(self, request):
        body = await self._body(request)
        try:
            tee, wid = protocol.parse_auth(body)
        except ProtocolError as e:
            raise Refusal(400, str(e)) from None
        if tee == protocol.SAMPLE_TEE and self.verifier.sample_roots is None:
            raise Refusal(403, "auth refused: sample (software) evidence is not accepted; the server was "
                               "not started with --allow-sample-evidence", wid)
        sid = secrets.token_hex(16)  # 32 hex chars, like reference-kbs's simple UUID; it is also the nonce
        try:
            created = self.storage.create_session(Session(sid, wid, tee, SESSION_NEW,
                                                          time.time() + self.config.session_ttl))
        except SessionLimit as e:
            raise Refusal(503, f"auth refused: {e}", wid) from None
        if not created:
            raise Refusal(404, f"workload {wid!r} is not registered", wid)
        response = web.json_response({"nonce": sid, "extra-params": ""})
        response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True,
                            secure=bool(self.config.tls_cert) or None)
        return response

    async def attest(self, request):
        sid = self._cookie(request)
        body = await self._body(request)
        try:
            att = protocol.parse_attest(body)
        except ProtocolError as e:
            raise Refusal(400, str(e)) from None
        now = time.time()
        # the nonce is burnt here, before verification: a failed attempt cannot be retried
        session = self.storage.consume_nonce(sid, now)
        if session is None:
            raise self._why_refused(sid, now, "attest")
        wid = session.workload_id
        workload = self.storage.get_workload(wid)
        if workload is None:
            raise Refusal(404, f"workload {wid!r} is no longer registered", wid)
        try:
            await self._verify(session, workload, att, sid)
        except Refusal as r:
            r.workload_id = wid
            raise
        self.storage.authorize(sid, att.k_mod, att.k_exp, now + self.config.session_ttl)
        self.audit("attested", request, workload_id=wid, session_id=sid)
        return web.Response(status=200)

    async def _verify(self, session, workload, att, nonce):
        """Verifier.check, in a verifier process when there is one (the ECDSA check holds the GIL:
        a process is what lets it run on another CPU while this one keeps serving)."""
        if self.verifier_pool is not None and len(self.verifier_pool):
            try:
                refused = await self.verifier_pool.call(
                    session.tee, att.gen, att.report, att.cert_chain, att.k_mod, att.k_exp, nonce,
                    workload.launch_measurement, workload.allow_debug, workload.min_tcb)
            except HelperGone:
                pass  # it died with this request: verify here instead (on_lost audited it)
            else:
                if refused is not None:
                    raise Refusal(*refused)
                return
        if self.config.kds_url:
            # a VCEK download may block for seconds: keep the event loop serving meanwhile
            await asyncio.get_running_loop().run_in_executor(None, self.verifier.check, session, workload, att, nonce)
        else:
            self.verifier.check(session, workload, att, nonce)

    def verifier_lost(self, pid):
        self.audit("error", None, status=500, reason=f"verifier process {pid} exited; "
                                                     f"{len(self.verifier_pool)} left, verifying in the server "
                                                     "process when none is")

    async def key(self, request):
        wid = request.match_info["workload_id"]
        sid = self._cookie(request)
        now = time.time()
        session = self.storage.release(sid, wid, now)  # once, and only for the attested workload
        if session is None:
            raise self._why_refused(sid, now, "key", wid)
        workload = self.storage.get_workload(wid)
        if workload is None:
            raise Refusal(404, f"workload {wid!r} is no longer registered", wid)
        n = int.from_bytes(base64.b64decode(session.k_mod), "big")
        e = int.from_bytes(base64.b64decode(session.k_exp), "big")
        passphrase = self.secret_key.unseal(wid, workload.passphrase_sealed)
        try:
            sealed = rsa.RSAPublicNumbers(e, n).public_key().encrypt(passphrase, padding.PKCS1v15())
        except ValueError:
            raise Refusal(400, "the passphrase is too long for the TEE's RSA key", wid) from None
        self.audit("release", request, workload_id=wid, session_id=sid)
        return web.json_response(sealed.hex())

    # --- administration ----------------------------------------------------------

    async def register(self, request):
        self._require_admin(request)
        body = await self._body(request)
        try:
            reg = protocol.parse_registration(body)
        except ProtocolError as e:
            raise Refusal(400, str(e)) from None
        wid = reg["workload_id"]
        sealed = self.secret_key.seal(wid, reg["passphrase"].encode())
        self.storage.put_workload(Workload(wid, reg["launch_measurement"], reg["tee_config"], sealed,
                                           reg["allow_debug"], reg["min_tcb"]))
        self.audit("register", request, workload_id=wid,
                   reason="registered without a launch measurement" if not reg["launch_measurement"] else None)
        return web.Response(status=200)

    async def delete(self, request):
        self._require_admin(request)
        wid = request.match_info["workload_id"]
        if not self.storage.delete_workload(wid):
            raise Refusal(404, f"workload {wid!r} is not registered", wid)
        self.audit("delete", request, workload_id=wid)
        return web.Response(status=200)

    async def list_workloads(self, request):
        self._require_admin(request)
        return web.json_response(self.storage.list_workloads())

    async def _purge_loop(self):
        # every second, so each purge removes one second's worth of sessions: a busy server
        # expires ~1,400 a second, and purging a minute's worth at once held the event loop
        # for ~100 ms (the expiry index/heap makes an empty purge cheap)
        failing = False
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            try:
                # keep expired sessions a while, so a late guest hears "expired", not "unknown"
                self.storage.purge_expired(time.time() - PURGE_GRACE)
                failing = False
            except Exception as e:  # the database may be briefly busy; try again next round
                if not failing:  # one audit line per outage, not one a second
                    self.audit("error", None, status=500, reason=f"purging sessions: {e}")
                failing = True

    def app(self):
        app = web.Application(client_max_size=self.config.max_body, middlewares=[self.refusals])
        app.add_routes([
            web.get(PREFIX + "/", self.root),
            web.post(PREFIX + "/auth", self.auth),
            web.post(PREFIX + "/attest", self.attest),
            web.get(PREFIX + "/key/{workload_id}", self.key),
            web.post(PREFIX + "/register_workload", self.register),
            web.delete(PREFIX + "/workload/{workload_id}", self.delete),
            web.get(PREFIX + "/workloads", self.list_workloads),
        ])
        return app


def _ssl_context(config):
    if not config.tls_cert:
        return None
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise OcirtError(f"TLS certificate {config.tls_cert} / key {config.tls_key}: {e}") from None
    return ctx


async def _run(config, sock, ssl_ctx, verifier_pool=None):
    kbs = KBS(config, verifier_pool=verifier_pool)
    if verifier_pool is not None:
        verifier_pool.on_lost = kbs.verifier_lost
        await verifier_pool.start()
    # idle keep-alive connections are dropped after 15 s: a guest needs three quick requests
    runner = web.AppRunner(kbs.app(), access_log=None, handle_signals=False, keepalive_timeout=15.0)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=ssl_ctx, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    purge = asyncio.ensure_future(kbs._purge_loop())
    # what start-up made (modules, routes, trust roots) lives as long as the server: move it out
    # of the cycle collector's generations, so a full collection walks only what serving made
    gc.freeze()
    await stop.wait()
    purge.cancel()
    await runner.cleanup()
    if verifier_pool is not None:
        verifier_pool.close()
    kbs.storage.close()


def _verifier_pool(config, sock):
    """Fork the verifier processes of one worker (before its event loop starts)."""
    if config.verifiers <= 0:
        return None
    return ProcessPool(config.verifiers, Verifier(config).check_plain, close_in_helpers=[sock])


def _run_loop(coro):
    """uvloop when installed (a faster event loop for the same asyncio code), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def serve(config):
    """Bind, print the listening URL on stdout, serve until SIGTERM/SIGINT."""
    if bool(config.tls_cert) != bool(config.tls_key):
        raise OcirtError("--tls-cert and --tls-key go together")
    ssl_ctx = _ssl_context(config)
    # fail early (before forking workers) on an unusable database, key or trust setup
    KBS(config).storage.close()
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    workers = max(1, config.workers)
    try:
        # one listening socket per worker in a SO_REUSEPORT group: the kernel spreads
        # connections evenly, where one shared socket lets the most awake worker take most
        sockets = [socket.create_server((config.host, config.port), backlog=1024, family=family,
                                        reuse_port=workers > 1)]
        port = sockets[0].getsockname()[1]
        sockets += [socket.create_server((config.host, port), backlog=1024, family=family, reuse_port=True)
                    for _ in range(workers - 1)]
    except OSError as e:
        raise OcirtError(f"cannot listen on {config.host}:{config.port}: {e.strerror}") from None
    for sock in sockets:
        sock.setblocking(False)
    scheme = "https" if ssl_ctx else "http"
    if config.open_registration:
        print("warning: --open-registration: anyone who can reach this server can register workloads",
              file=sys.stderr, flush=True)
    if config.allow_sample_evidence:
        print("warning: --allow-sample-evidence: SOFTWARE sample evidence is accepted; not for production",
              file=sys.stderr, flush=True)
    print(f"ocirt-kbs listening on {scheme}://{config.host}:{port}{PREFIX}", flush=True)
    if workers == 1:
        _run_loop(_run(config, sockets[0], ssl_ctx, _verifier_pool(config, sockets[0])))
        return 0
    children = []
    for mine in sockets:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for other in sockets:
                    if other is not mine:
                        other.close()
                _run_loop(_run(config, mine, ssl_ctx, _verifier_pool(config, mine)))
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    for sock in sockets:
        sock.close()

    def forward(signum, _frame):
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        while True:
            try:
                _, st = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        status = status or os.waitstatus_to_exitcode(st)
    return 1 if status else 0
