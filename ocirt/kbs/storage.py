"""Storage for ocirt-kbs: workloads and attestation sessions.

One interface (``Storage``), one SQL implementation with two dialects:

* SQLite (default; a file path) for a single server, or several worker
  processes on one host (WAL mode, so they share sessions safely);
* PostgreSQL (``postgresql://...``, needs ``psycopg``) so several server
  replicas behind a load balancer share workloads *and* sessions: a guest
  may hit replica A for ``auth`` and replica B for ``attest``.

Every state change that guards a secret is one conditional UPDATE whose row
count decides, so single-use nonces and single-release sessions hold across
processes and replicas without extra locking.

When one process serves an SQLite database alone (``serve --workers 1``),
sessions need not be shared with anyone: ``MemorySessions`` keeps them (and a
cache of the workloads) in that process's memory, with the same state machine,
and the database is only written by administration.  ``open_storage`` then
holds an exclusive lock on ``<db>.lock`` so no second server can use the
database meanwhile; servers that keep sessions in the database hold it shared.

Passphrases are stored sealed with AES-256-GCM under the server key
(``SecretKey``), with the workload id as associated data so a sealed blob
cannot be moved to another workload's row.
"""
import json
import os
import time

from ocirt.errors import OcirtError

SESSION_NEW, SESSION_USED, SESSION_ATTESTED, SESSION_RELEASED = "new", "used", "attested", "released"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS workloads (
        workload_id TEXT PRIMARY KEY,
        launch_measurement TEXT NOT NULL,
        tee_config TEXT NOT NULL,
        passphrase_sealed {blob} NOT NULL,
        allow_debug INTEGER NOT NULL,
        min_tcb TEXT,
        created {real} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sessions (
        session_id TEXT PRIMARY KEY,
        workload_id TEXT NOT NULL,
        tee TEXT NOT NULL,
        state TEXT NOT NULL,
        expires_at {real} NOT NULL,
        k_mod TEXT,
        k_exp TEXT)""",
    "CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at)",
)


class Workload:
    __slots__ = ("workload_id", "launch_measurement", "tee_config", "passphrase_sealed", "allow_debug",
                 "min_tcb", "created")

    def __init__(self, workload_id, launch_measurement, tee_config, passphrase_sealed, allow_debug=False,
                 min_tcb=None, created=None):
        self.workload_id = workload_id
        self.launch_measurement = launch_measurement  # lowercase hex, "" if none was registered
        self.tee_config = tee_config                  # kept as sent (buildah's sev Policy JSON); not trusted
        self.passphrase_sealed = bytes(passphrase_sealed)
        self.allow_debug = bool(allow_debug)
        self.min_tcb = min_tcb
        self.created = created if created is not None else time.time()


class Session:
    __slots__ = ("session_id", "workload_id", "tee", "state", "expires_at", "k_mod", "k_exp")

    def __init__(self, session_id, workload_id, tee, state, expires_at, k_mod=None, k_exp=None):
        self.session_id, self.workload_id, self.tee, self.state = session_id, workload_id, tee, state
        self.expires_at, self.k_mod, self.k_exp = expires_at, k_mod, k_exp


class Storage:
    """What the server needs from a database.  All times are epoch seconds."""

    def put_workload(self, workload): raise NotImplementedError          # insert or replace; drops its sessions
    def get_workload(self, workload_id): raise NotImplementedError       # -> Workload | None
    def delete_workload(self, workload_id): raise NotImplementedError    # -> bool (existed)
    def list_workloads(self): raise NotImplementedError                  # -> [workload_id]
    def create_session(self, session):
        """Insert a session for a registered workload; False if the workload is not registered."""
        raise NotImplementedError

    def get_session(self, session_id): raise NotImplementedError         # -> Session | None

    def consume_nonce(self, session_id, now):
        """new → used, only if unexpired: the Session exactly once, then None."""
        raise NotImplementedError

    def authorize(self, session_id, k_mod, k_exp, expires_at):
        """used → attested, remembering the TEE key the secret is sealed to."""
        raise NotImplementedError

    def release(self, session_id, workload_id, now):
        """attested → released for this workload, only if unexpired: the Session (with the
        TEE key) exactly once, then None."""
        raise NotImplementedError

    def purge_expired(self, now): raise NotImplementedError              # -> rows removed
    def close(self): pass


class SQLStorage(Storage):
    """The interface over a DB-API connection; SQL written once for both dialects."""

    placeholder = "?"
    blob, real = "BLOB", "REAL"
    lock_fd = None  # see lock_database

    def __init__(self, conn):
        self.conn = conn
        for statement in _SCHEMA:
            self._run(statement.format(blob=self.blob, real=self.real))

    def _sql(self, sql):
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _run(self, sql, args=()):
        cur = self.conn.cursor()
        cur.execute(self._sql(sql), args)
        return cur

    def put_workload(self, w):
        # sessions attested against the previous registration must not release the new secret
        self._run("DELETE FROM sessions WHERE workload_id = ?", (w.workload_id,))
        self._run("INSERT INTO workloads (workload_id, launch_measurement, tee_config, passphrase_sealed, "
                  "allow_debug, min_tcb, created) VALUES (?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (workload_id) DO UPDATE SET launch_measurement = excluded.launch_measurement, "
                  "tee_config = excluded.tee_config, passphrase_sealed = excluded.passphrase_sealed, "
                  "allow_debug = excluded.allow_debug, min_tcb = excluded.min_tcb, created = excluded.created",
                  (w.workload_id, w.launch_measurement, w.tee_config, w.passphrase_sealed, int(w.allow_debug),
                   json.dumps(w.min_tcb) if w.min_tcb else None, w.created))

    def get_workload(self, workload_id):
        row = self._run("SELECT workload_id, launch_measurement, tee_config, passphrase_sealed, allow_debug, "
                        "min_tcb, created FROM workloads WHERE workload_id = ?", (workload_id,)).fetchone()
        if row is None:
            return None
        wid, measurement, tee_config, sealed, allow_debug, min_tcb, created = row
        return Workload(wid, measurement, tee_config, sealed, bool(allow_debug),
                        json.loads(min_tcb) if min_tcb else None, created)

    def delete_workload(self, workload_id):
        self._run("DELETE FROM sessions WHERE workload_id = ?", (workload_id,))
        return self._run("DELETE FROM workloads WHERE workload_id = ?", (workload_id,)).rowcount > 0

    def list_workloads(self):
        return [r[0] for r in self._run("SELECT workload_id FROM workloads ORDER BY workload_id").fetchall()]

    _SESSION_COLUMNS = "session_id, workload_id, tee, state, expires_at, k_mod, k_exp"

    def create_session(self, s):
        # one statement: the session row exists only if the workload does
        return self._run("INSERT INTO sessions (session_id, workload_id, tee, state, expires_at) "
                         "SELECT ?, workload_id, ?, ?, ? FROM workloads WHERE workload_id = ?",
                         (s.session_id, s.tee, s.state, s.expires_at, s.workload_id)).rowcount == 1

    def get_session(self, session_id):
        row = self._run(f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE session_id = ?",
                        (session_id,)).fetchone()
        return Session(*row) if row else None

    def _transition(self, session_id, old, new, now, extra_where="", args=()):
        # UPDATE ... RETURNING: the row count decides and the row comes back in the same
        # statement; fetchall() so SQLite finishes (and commits) the statement at once
        rows = self._run(f"UPDATE sessions SET state = ? WHERE session_id = ? AND state = ? AND expires_at > ?"
                         f"{extra_where} RETURNING {self._SESSION_COLUMNS}",
                         (new, session_id, old, now, *args)).fetchall()
        return Session(*rows[0]) if len(rows) == 1 else None

    def consume_nonce(self, session_id, now):
        return self._transition(session_id, SESSION_NEW, SESSION_USED, now)

    def authorize(self, session_id, k_mod, k_exp, expires_at):
        return self._run("UPDATE sessions SET state = ?, k_mod = ?, k_exp = ?, expires_at = ? "
                         "WHERE session_id = ? AND state = ?",
                         (SESSION_ATTESTED, k_mod, k_exp, expires_at, session_id, SESSION_USED)).rowcount == 1

    def release(self, session_id, workload_id, now):
        return self._transition(session_id, SESSION_ATTESTED, SESSION_RELEASED, now, " AND workload_id = ?",
                                (workload_id,))

    def purge_expired(self, now):
        return self._run("DELETE FROM sessions WHERE expires_at <= ?", (now,)).rowcount

    def close(self):
        self.conn.close()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


class SQLiteStorage(SQLStorage):
    def __init__(self, path):
        import sqlite3
        try:
            # autocommit (isolation_level=None): every statement is its own transaction
            conn = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            super().__init__(conn)
        except sqlite3.Error as e:
            raise OcirtError(f"kbs database {path}: {e}") from None
        if path != ":memory:":
            os.chmod(path, 0o600)


class PostgresStorage(SQLStorage):
    """PostgreSQL through psycopg 3, autocommit.  A dropped connection (database restart,
    failover) is re-opened once per statement; retrying a guarded UPDATE whose first
    attempt did commit finds the state already moved and fails closed."""
    placeholder = "%s"
    blob, real = "BYTEA", "DOUBLE PRECISION"

    def __init__(self, dsn):
        try:
            import psycopg
        except ImportError:
            raise OcirtError("kbs database: a postgresql:// URL needs the 'psycopg' package (pip install psycopg)") from None
        self._psycopg, self._dsn = psycopg, dsn
        super().__init__(self._connect())

    def _connect(self):
        try:
            return self._psycopg.connect(self._dsn, autocommit=True)
        except self._psycopg.Error as e:
            raise OcirtError(f"kbs database: cannot connect to PostgreSQL: {str(e).strip()}") from None

    def _run(self, sql, args=()):
        try:
            return super()._run(sql, args)
        except self._psycopg.OperationalError:
            if not self.conn.closed:
                raise
            self.conn = self._connect()
            return super()._run(sql, args)


# MemorySessions' record of one session: a tuple of str/float/None, which the cycle collector
# untracks (see MemorySessions)
_WID, _TEE, _STATE, _EXPIRES, _KMOD, _KEXP = range(6)


def _record(workload_id, tee, state, expires_at, k_mod, k_exp):
    return (workload_id, tee, state, float(expires_at), k_mod, k_exp)


class SessionLimit(OcirtError):
    """Too many open sessions held in memory (see MemorySessions.MAX_SESSIONS)."""


class MemorySessions(Storage):
    """Workloads in an SQLStorage (cached here), sessions in this process's memory.

    Only correct while this process is the only user of the database (``open_storage``
    takes ``<db>.lock`` exclusively for it): another process would neither see these
    sessions nor tell this one about re-registrations.  Each transition is a
    check-and-set under a lock, so a nonce is consumed and a key released exactly once
    however the calls interleave.  Expiry is kept in a heap, so purging costs the
    expired sessions, not all of them.  Sessions are lost on restart: a guest in the
    middle of its flow then hears "unknown session" and starts again.

    Each session is kept as a tuple of strings and numbers (``_record``), not a Session:
    CPython's cycle collector stops tracking such tuples (and the heap's entries), so a
    full collection does not walk the hundreds of thousands of sessions a busy server
    holds for their TTL, which would stall every request for tens of milliseconds.
    """
    MAX_SESSIONS = 1_000_000  # ~250 bytes each; beyond it auth is refused until sessions expire

    def __init__(self, sql, lock_fd=None):
        import threading
        self.sql, self._lock_fd = sql, lock_fd
        self._sessions = {}      # session_id -> _record(...) tuple; callers get Session copies
        self._expiry = []        # heap of (expires_at, session_id); stale entries are skipped
        self._workloads = {}     # workload_id -> Workload, filled on first use
        self._mutex = threading.Lock()

    # --- workloads: the database, through a cache only this process writes ---------

    def put_workload(self, w):
        with self._mutex:
            self._drop_sessions_of(w.workload_id)
            self._workloads.pop(w.workload_id, None)
        self.sql.put_workload(w)

    def get_workload(self, workload_id):
        w = self._workloads.get(workload_id)
        if w is None:
            w = self.sql.get_workload(workload_id)
            if w is not None:
                with self._mutex:
                    if len(self._workloads) >= 4096:
                        self._workloads.clear()
                    self._workloads[workload_id] = w
        return w

    def delete_workload(self, workload_id):
        with self._mutex:
            self._drop_sessions_of(workload_id)
            self._workloads.pop(workload_id, None)
        return self.sql.delete_workload(workload_id)

    def list_workloads(self):
        return self.sql.list_workloads()

    def _drop_sessions_of(self, workload_id):
        # sessions attested against the previous registration must not release the new secret
        for sid in [sid for sid, r in self._sessions.items() if r[_WID] == workload_id]:
            del self._sessions[sid]

    # --- sessions ---------------------------------------------------------------------

    @staticmethod
    def _session(session_id, r):
        return Session(session_id, r[_WID], r[_TEE], r[_STATE], r[_EXPIRES], r[_KMOD], r[_KEXP])

    def create_session(self, s):
        import heapq
        if self.get_workload(s.workload_id) is None:
            return False
        with self._mutex:
            if len(self._sessions) >= self.MAX_SESSIONS:
                self._purge(time.time())  # expired ones go at once, grace or not
                if len(self._sessions) >= self.MAX_SESSIONS:
                    raise SessionLimit(f"{len(self._sessions)} sessions are open; try again later")
            if s.session_id in self._sessions:
                return False
            self._sessions[s.session_id] = _record(s.workload_id, s.tee, s.state, s.expires_at, s.k_mod, s.k_exp)
            heapq.heappush(self._expiry, (s.expires_at, s.session_id))
        return True

    def get_session(self, session_id):
        r = self._sessions.get(session_id)
        return self._session(session_id, r) if r is not None else None

    def consume_nonce(self, session_id, now):
        with self._mutex:
            r = self._sessions.get(session_id)
            if r is None or r[_STATE] != SESSION_NEW or r[_EXPIRES] <= now:
                return None
            r = self._sessions[session_id] = _record(r[_WID], r[_TEE], SESSION_USED, r[_EXPIRES], r[_KMOD],
                                                     r[_KEXP])
            return self._session(session_id, r)

    def authorize(self, session_id, k_mod, k_exp, expires_at):
        import heapq
        with self._mutex:
            r = self._sessions.get(session_id)
            if r is None or r[_STATE] != SESSION_USED:
                return False
            self._sessions[session_id] = _record(r[_WID], r[_TEE], SESSION_ATTESTED, expires_at, k_mod, k_exp)
            heapq.heappush(self._expiry, (expires_at, session_id))
            return True

    def release(self, session_id, workload_id, now):
        with self._mutex:
            r = self._sessions.get(session_id)
            if (r is None or r[_STATE] != SESSION_ATTESTED or r[_EXPIRES] <= now
                    or r[_WID] != workload_id):
                return None
            out = self._session(session_id, r)
            out.state = SESSION_RELEASED
            # the TEE key is not needed any more; the record stays for "already released"
            self._sessions[session_id] = _record(r[_WID], r[_TEE], SESSION_RELEASED, r[_EXPIRES], None, None)
            return out

    def purge_expired(self, now):
        with self._mutex:
            return self._purge(now)

    def _purge(self, now):
        import heapq
        removed, heap = 0, self._expiry
        while heap and heap[0][0] <= now:
            _, sid = heapq.heappop(heap)
            r = self._sessions.get(sid)
            if r is not None and r[_EXPIRES] <= now:  # else: an entry made stale by authorize
                del self._sessions[sid]
                removed += 1
        return removed

    def close(self):
        self.sql.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def lock_database(path, exclusive):
    """flock ``<path>.lock``: exclusive for a server keeping sessions in memory, shared for
    servers keeping them in the database.  Returns the fd (closing it releases the lock)."""
    import fcntl
    lock_path = path + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise OcirtError(f"kbs database lock {lock_path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = "another ocirt-kbs server" if exclusive else "another ocirt-kbs server that keeps its sessions in memory"
        raise OcirtError(f"kbs database {path} is in use by {who}: one server with --workers 1 keeps "
                         "sessions in memory and needs the database to itself; several processes on one "
                         "host are one server's --workers N, replicas need PostgreSQL") from None
    return fd


def is_postgres(location):
    return location.startswith(("postgresql://", "postgres://"))


def open_storage(location, sessions="database"):
    """A path → SQLite; ``postgresql://`` or ``postgres://`` → PostgreSQL.

    sessions="memory" (SQLite only; one process serving the database): sessions in this
    process (MemorySessions), the database locked against other servers.  "database":
    sessions in the database, shared by every process using it."""
    if is_postgres(location):
        if sessions == "memory":
            raise OcirtError("kbs database: PostgreSQL is for replicas sharing sessions; "
                             "sessions cannot be kept in memory")
        return PostgresStorage(location)
    if location == ":memory:":
        sql = SQLiteStorage(location)
        return MemorySessions(sql) if sessions == "memory" else sql
    fd = lock_database(location, exclusive=sessions == "memory")
    try:
        sql = SQLiteStorage(location)
    except BaseException:
        os.close(fd)
        raise
    if sessions == "memory":
        return MemorySessions(sql, fd)
    sql.lock_fd = fd
    return sql


class SecretKey:
    """The server key that seals passphrases at rest (AES-256-GCM).

    Sealed form: ``b"v1" ‖ 12-byte nonce ‖ ciphertext+tag``, with the workload
    id as associated data.  All replicas sharing a database need the same key.
    """
    SIZE = 32

    def __init__(self, key):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        if len(key) != self.SIZE:
            raise OcirtError(f"kbs secret key must be {self.SIZE} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path, create=True):
        """Load the key; create a fresh random one (mode 0600) if the file is missing."""
        try:
            with open(path, "rb") as f:
                data = f.read(cls.SIZE + 1)
        except FileNotFoundError:
            if not create:
                raise OcirtError(f"kbs secret key {path}: no such file") from None
            data = os.urandom(cls.SIZE)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another worker made it first
                return cls.from_file(path, create=False)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as e:
            raise OcirtError(f"kbs secret key {path}: {e.strerror}") from None
        if len(data) != cls.SIZE:
            raise OcirtError(f"kbs secret key {path}: must hold exactly {cls.SIZE} raw bytes")
        return cls(data)

    def seal(self, workload_id, plaintext):
        nonce = os.urandom(12)
        return b"v1" + nonce + self._aead.encrypt(nonce, plaintext, workload_id.encode())

    def unseal(self, workload_id, sealed):
        from cryptography.exceptions import InvalidTag
        if sealed[:2] != b"v1" or len(sealed) < 2 + 12 + 16:
            raise OcirtError(f"workload {workload_id}: stored passphrase has an unknown format")
        try:
            return self._aead.decrypt(sealed[2:14], sealed[14:], workload_id.encode())
        except InvalidTag:
            raise OcirtError(f"workload {workload_id}: stored passphrase does not open with this server key") from None
