"""Storage: the session state machine, sealing at rest, and the same SQL on SQLite and PostgreSQL."""
import concurrent.futures
import os
import time

import pytest

from ocirt.errors import OcirtError
from ocirt.kbs import storage
from ocirt.kbs.storage import SESSION_NEW, SecretKey, Session, SQLiteStorage, Workload
from tests.test_kbs_helpers import pg_dsn  # noqa: F401 (fixture)


BACKENDS = ["sqlite", "postgresql", "memory"]


@pytest.fixture(params=BACKENDS)
def open_db(request, tmp_path):
    """A factory of connections to one fresh database of the parametrized kind.
    "memory": SQLite for workloads, sessions in this process (one connection only)."""
    if request.param == "memory":
        opened = []

        def factory():
            if opened:
                pytest.skip("sessions in memory are not shared between connections (by design)")
            opened.append(storage.open_storage(str(tmp_path / "kbs.db"), sessions="memory"))
            return opened[-1]
        yield factory
        for db in opened:
            db.close()
        return
    if request.param == "sqlite":
        path = str(tmp_path / "kbs.db")
        opened = []

        def factory():
            opened.append(SQLiteStorage(path))
            return opened[-1]
        yield factory
        for db in opened:
            db.close()
        return
    dsn = request.getfixturevalue("pg_dsn")
    opened = []

    def factory():
        opened.append(storage.open_storage(dsn))
        return opened[-1]
    first = factory()
    first._run("DELETE FROM sessions")
    first._run("DELETE FROM workloads")
    yield factory
    for db in opened:
        db.close()


def _workload(wid="w1", sealed=b"v1" + bytes(40)):
    return Workload(wid, "ab" * 48, "{}", sealed, allow_debug=False, min_tcb={"snp": 8})


def test_workload_round_trip_and_replace(open_db):
    db = open_db()
    db.put_workload(_workload())
    w = db.get_workload("w1")
    assert (w.launch_measurement, w.min_tcb, w.allow_debug, w.passphrase_sealed) == ("ab" * 48, {"snp": 8}, False,
                                                                                     b"v1" + bytes(40))
    db.put_workload(Workload("w1", "", "", b"v1" + b"x" * 40, allow_debug=True))
    w = db.get_workload("w1")
    assert w.allow_debug and w.min_tcb is None and w.launch_measurement == ""
    assert db.list_workloads() == ["w1"]
    assert db.get_workload("nope") is None


def test_nonce_is_single_use_across_connections(open_db):
    a, b = open_db(), open_db()
    a.put_workload(_workload())
    now = time.time()
    assert a.create_session(Session("s1", "w1", "snp", SESSION_NEW, now + 60))
    won = b.consume_nonce("s1", now)
    assert (won.session_id, won.workload_id, won.tee, won.state) == ("s1", "w1", "snp", "used")
    assert a.consume_nonce("s1", now) is None
    assert b.consume_nonce("s1", now) is None


def test_racing_replicas_consume_a_nonce_once(open_db):
    conns = [open_db() for _ in range(6)]
    conns[0].put_workload(_workload())
    now = time.time()
    conns[0].create_session(Session("race", "w1", "snp", SESSION_NEW, now + 60))
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        wins = list(pool.map(lambda db: db.consume_nonce("race", now), conns))
    assert sum(w is not None for w in wins) == 1


def test_session_lifecycle_and_expiry(open_db):
    db = open_db()
    db.put_workload(_workload())
    now = time.time()
    assert db.create_session(Session("s", "w1", "snp", SESSION_NEW, now + 60))
    assert not db.create_session(Session("x", "unregistered", "snp", SESSION_NEW, now + 60))
    assert db.get_session("x") is None
    assert db.release("s", "w1", now) is None                 # not attested yet
    assert db.consume_nonce("s", now)
    assert db.authorize("s", "mod", "AQAB", now + 60)
    s = db.get_session("s")
    assert (s.state, s.k_mod, s.k_exp) == ("attested", "mod", "AQAB")
    assert db.release("s", "w2", now) is None                 # only for the attested workload
    released = db.release("s", "w1", now)
    assert (released.k_mod, released.k_exp, released.state) == ("mod", "AQAB", "released")
    assert db.release("s", "w1", now) is None                 # once
    db.create_session(Session("old", "w1", "snp", SESSION_NEW, now - 1))
    assert db.consume_nonce("old", now) is None               # expired
    assert db.purge_expired(now) == 1
    assert db.get_session("old") is None and db.get_session("s") is not None


def test_delete_workload_drops_its_sessions(open_db):
    db = open_db()
    db.put_workload(_workload())
    db.create_session(Session("s", "w1", "snp", SESSION_NEW, time.time() + 60))
    assert db.delete_workload("w1") is True
    assert db.get_session("s") is None
    assert db.delete_workload("w1") is False


def test_reregistration_drops_sessions(open_db):
    db = open_db()
    db.put_workload(_workload())
    now = time.time()
    db.create_session(Session("s", "w1", "snp", SESSION_NEW, now + 60))
    assert db.consume_nonce("s", now) and db.authorize("s", "mod", "AQAB", now + 60)
    db.put_workload(_workload(sealed=b"v1" + b"n" * 40))
    assert db.release("s", "w1", now) is None and db.get_session("s") is None
    assert db.get_workload("w1").passphrase_sealed == b"v1" + b"n" * 40


def test_memory_sessions_purge_by_expiry_heap(tmp_path):
    db = storage.open_storage(str(tmp_path / "kbs.db"), sessions="memory")
    try:
        db.put_workload(_workload())
        now = time.time()
        for i in range(50):  # created in one order, expiring in another
            assert db.create_session(Session(f"s{i}", "w1", "snp", SESSION_NEW, now + (i % 5)))
        assert db.consume_nonce("s0", now - 1) and db.authorize("s0", "m", "e", now + 100)  # extended
        assert db.purge_expired(now + 2.5) == 29   # expiry now+0..2, minus s0
        assert db.get_session("s0").state == "attested" and db.get_session("s1") is None
        assert db.get_session("s3") is not None
        assert db.purge_expired(now + 99) == 20 and db.purge_expired(now + 100) == 1
        # the database itself holds no session
        assert db.sql._run("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    finally:
        db.close()


def test_memory_sessions_stay_out_of_the_cycle_collector(tmp_path):
    """Records of plain values: after one collection none of them is tracked, so a full
    collection does not grow with the number of open sessions."""
    import gc
    db = storage.open_storage(str(tmp_path / "kbs.db"), sessions="memory")
    try:
        db.put_workload(_workload())
        now = time.time()
        for i in range(300):
            assert db.create_session(Session(f"s{i}", "w1", "snp", SESSION_NEW, now + 60))
        for i in range(0, 300, 3):
            assert db.consume_nonce(f"s{i}", now) and db.authorize(f"s{i}", "bW9k", "AQAB", now + 60)
        for i in range(0, 300, 6):
            assert db.release(f"s{i}", "w1", now).k_mod == "bW9k"
        gc.collect()
        records = list(db._sessions.values()) + db._expiry
        assert len(records) == 300 + 400 and not any(gc.is_tracked(r) for r in records)
        assert not gc.is_tracked(db._sessions)
        assert db.get_session("s0").state == "released" and db.get_session("s0").k_mod is None
        assert db.get_session("s3").state == "attested" and db.get_session("s1").state == "new"
    finally:
        db.close()


def test_memory_sessions_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.MemorySessions, "MAX_SESSIONS", 3)
    db = storage.open_storage(str(tmp_path / "kbs.db"), sessions="memory")
    try:
        db.put_workload(_workload())
        now = time.time()
        db.create_session(Session("old", "w1", "snp", SESSION_NEW, now - 1))
        for sid in ("a", "b", "c"):       # the expired one makes room
            assert db.create_session(Session(sid, "w1", "snp", SESSION_NEW, now + 60))
        with pytest.raises(storage.SessionLimit):
            db.create_session(Session("d", "w1", "snp", SESSION_NEW, now + 60))
    finally:
        db.close()


def test_memory_sessions_own_the_database(tmp_path):
    """A server keeping sessions in memory excludes every other server on its SQLite file;
    servers sharing sessions through the file exclude it, and not each other."""
    path = str(tmp_path / "kbs.db")
    mem = storage.open_storage(path, sessions="memory")
    with pytest.raises(OcirtError, match="in use by another ocirt-kbs server"):
        storage.open_storage(path, sessions="memory")
    with pytest.raises(OcirtError, match="keeps its sessions in memory"):
        storage.open_storage(path)
    mem.close()
    shared = [storage.open_storage(path), storage.open_storage(path)]
    with pytest.raises(OcirtError, match="in use by another ocirt-kbs server"):
        storage.open_storage(path, sessions="memory")
    for db in shared:
        db.close()
    storage.open_storage(path, sessions="memory").close()


def test_secret_key_seals_per_workload(tmp_path):
    path = str(tmp_path / "key")
    key = SecretKey.from_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.path.getsize(path) == 32
    sealed = key.seal("w1", b"hunter2")
    assert b"hunter2" not in sealed
    assert SecretKey.from_file(path).unseal("w1", sealed) == b"hunter2"
    with pytest.raises(OcirtError, match="does not open"):
        key.unseal("w2", sealed)          # moved to another workload's row
    with pytest.raises(OcirtError, match="does not open"):
        SecretKey(os.urandom(32)).unseal("w1", sealed)
    (tmp_path / "short").write_bytes(b"x" * 10)
    with pytest.raises(OcirtError, match="exactly 32"):
        SecretKey.from_file(str(tmp_path / "short"))


def test_unusable_database_path(tmp_path):
    with pytest.raises(OcirtError, match="kbs database"):
        SQLiteStorage(str(tmp_path / "missing-dir" / "kbs.db"))


def test_postgresql_connection_loss_is_survived(pg_dsn):
    import psycopg
    db = storage.open_storage(pg_dsn)
    try:
        db.put_workload(_workload("w-reconnect"))
        pid = db.conn.info.backend_pid
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert db.get_workload("w-reconnect").workload_id == "w-reconnect"
        assert db.conn.info.backend_pid != pid
    finally:
        db.close()
