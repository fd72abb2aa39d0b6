"""ocirt.kbs.pool: helper processes answering over socketpairs, plain values only."""
import asyncio
import os
import pickle
import signal

import pytest

from ocirt.kbs import pool


def _work(kind, value):
    if kind == "echo":
        return value
    if kind == "pid":
        return os.getpid()
    if kind == "die":
        os._exit(3)
    raise ValueError(f"no such kind {kind!r}")


def _run(p, coro):
    """Run coro with the pool started, and close it inside the loop (as serve does)."""
    async def main():
        await p.start()
        try:
            return await coro
        finally:
            p.close()
    return asyncio.run(main())


def test_calls_are_answered_in_their_own_process():
    p = pool.ProcessPool(2, _work)

    async def go():
        values = await asyncio.gather(*(p.call("echo", (i, b"x" * i, {"k": [i]})) for i in range(50)))
        pids = set(await asyncio.gather(*(p.call("pid", None) for _ in range(20))))
        return values, pids
    values, pids = _run(p, go())
    assert values == [(i, b"x" * i, {"k": [i]}) for i in range(50)]
    assert os.getpid() not in pids and len(pids) == 2


def test_an_exception_in_work_comes_back_and_the_helper_goes_on():
    p = pool.ProcessPool(1, _work)

    async def go():
        with pytest.raises(pool.HelperError, match="ValueError: no such kind 'nope'"):
            await p.call("nope", 1)
        return await p.call("echo", 7)
    assert _run(p, go()) == 7


def test_a_helper_that_dies_fails_its_call_and_is_not_used_again():
    lost = []
    p = pool.ProcessPool(1, _work, on_lost=lost.append)
    pid = p.helpers[0].pid

    async def go():
        with pytest.raises(pool.HelperGone):
            await p.call("die", None)
        assert len(p) == 0
        with pytest.raises(pool.HelperGone, match="no helper"):
            await p.call("echo", 1)
    _run(p, go())
    assert lost == [pid]


def test_helpers_exit_when_closed():
    p = pool.ProcessPool(2, _work)
    pids = [h.pid for h in p.helpers]
    p.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_only_plain_values_are_unpickled():
    assert pool._loads(pickle.dumps(("x", b"y", 1, True, None, {"a": (1, 2)}))) == \
        ("x", b"y", 1, True, None, {"a": (1, 2)})
    for value in (pool.ProcessPool, os.system, signal.SIGTERM, ValueError("x")):
        with pytest.raises(pickle.UnpicklingError, match="only plain values"):
            pool._loads(pickle.dumps(value))

