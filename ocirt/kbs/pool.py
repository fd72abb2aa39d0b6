"""Helper processes for ``ocirt-kbs serve``: CPU-bound work off the serving process.

The serving process runs aiohttp on one core; ECDSA P-384 verification holds the
GIL, so a thread would not use a second core.  ``ProcessPool`` forks helper
processes before the event loop starts and feeds them over private socketpairs:
each request is one length-prefixed pickle of a tuple of plain values (str,
bytes, int, bool, None, dicts and tuples of them), answered in order.  Both ends
unpickle with ``_PlainUnpickler``, which refuses every class, so a message can
only ever be plain data.

The pool is generic: ``work(*args)`` runs in the helper and returns a plain value
(an exception in it comes back as ``HelperError``).  When a helper dies, the
requests it held fail with ``HelperGone`` and it is not used again; callers
then do the work themselves (see ``KBS.attest``).
"""
import asyncio
import collections
import gc
import io
import os
import pickle
import signal
import socket
import struct

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 4 << 20


class HelperGone(Exception):
    """The helper process exited (or no helper is left) before answering."""


class HelperError(Exception):
    """``work`` raised in the helper: its type and message, as text."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name}: only plain values are passed to and from helpers")


def _loads(data):
    return _PlainUnpickler(io.BytesIO(data)).load()


def _frame(value):
    data = pickle.dumps(value, protocol=5)
    return _HEADER.pack(len(data)) + data


def _helper_main(sock, work):
    """A helper's whole life: answer requests in order until the serving process goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C reaches the process group: the server decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()  # start-up objects (modules, trust roots) are never garbage: keep them out of collections
    rfile = sock.makefile("rb", buffering=1 << 16)
    while True:
        head = rfile.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return  # EOF: the serving process closed its end or exited
        (size,) = _HEADER.unpack(head)
        if size > MAX_MESSAGE:
            return
        data = rfile.read(size)
        if len(data) < size:
            return
        try:
            answer = ("ok", work(*_loads(data)))
        except Exception as e:  # a bug in work: report it, keep serving
            answer = ("error", f"{type(e).__name__}: {e}")
        sock.sendall(_frame(answer))


class _Helper(asyncio.Protocol):
    """The serving process's end of one helper: requests written, answers matched in order."""

    def __init__(self, pid, sock, on_lost):
        self.pid, self.sock, self.on_lost = pid, sock, on_lost
        self.transport, self.alive = None, True
        self.pending = collections.deque()
        self.buffer = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self.buffer
        buf += data
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            answer = _loads(bytes(buf[_HEADER.size:_HEADER.size + size]))
            del buf[:_HEADER.size + size]
            future = self.pending.popleft()
            if not future.done():  # a cancelled request's answer is dropped
                future.set_result(answer)

    def connection_lost(self, exc):
        if not self.alive:
            return
        self.alive = False
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(HelperGone(f"helper process {self.pid} exited"))
        if self.on_lost is not None:
            self.on_lost(self)


class ProcessPool:
    """``count`` forked helpers running ``work``; ``await call(*args)`` → work's result.

    Create it before the event loop starts (it forks), ``await start()`` inside the loop,
    ``close()`` at the end.  ``close_in_helpers``: sockets/fds the helpers must not keep
    (listening sockets).  ``on_lost(pid)`` is called once for each helper that dies."""

    def __init__(self, count, work, close_in_helpers=(), on_lost=None):
        self.on_lost = on_lost
        self.helpers = []
        ours = []  # serving-process ends made so far: later helpers must not hold them
        for _ in range(count):
            parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    for other in list(close_in_helpers) + ours + [parent_end]:
                        other.close()
                    _helper_main(child_end, work)
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            child_end.close()
            ours.append(parent_end)
            self.helpers.append(_Helper(pid, parent_end, self._lost))

    def __len__(self):
        return sum(1 for h in self.helpers if h.alive)

    async def start(self):
        loop = asyncio.get_running_loop()
        for helper in self.helpers:
            helper.sock.setblocking(False)
            await loop.create_unix_connection(lambda h=helper: h, sock=helper.sock)

    def _lost(self, helper):
        self._reap(helper.pid, 50)
        if self.on_lost is not None:
            self.on_lost(helper.pid)

    def _reap(self, pid, tries):
        """waitpid without blocking the loop: the socket closes a moment before the exit status is there."""
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if not done and tries > 1:
            asyncio.get_running_loop().call_later(0.1, self._reap, pid, tries - 1)

    async def call(self, *args):
        """work(*args) in the least busy live helper; HelperGone if none is left or it died."""
        best = None
        for helper in self.helpers:
            if helper.alive and helper.transport is not None and (
                    best is None or len(helper.pending) < len(best.pending)):
                best = helper
        if best is None:
            raise HelperGone("no helper process is left")
        future = asyncio.get_running_loop().create_future()
        best.pending.append(future)
        best.transport.write(_frame(args))
        status, value = await future
        if status != "ok":
            raise HelperError(value)
        return value

    def close(self):
        """Stop and reap every helper (an idle helper also exits by itself on EOF)."""
        for helper in self.helpers:
            helper.alive = False
            if helper.transport is not None:
                helper.transport.close()
            else:
                helper.sock.close()
            try:
                os.kill(helper.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for helper in self.helpers:
            try:
                os.waitpid(helper.pid, 0)
            except ChildProcessError:
                pass
        self.helpers = []
