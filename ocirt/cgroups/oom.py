"""OOM notifications for ``ocirt events``.

v1: an eventfd registered on memory.oom_control through cgroup.event_control
(Documentation/admin-guide/cgroup-v1/memory.rst "OOM Control"); every read of
the eventfd is one or more OOM events.
v2: memory.events is a kernfs file that wakes poll(2) with POLLPRI when it
changes; an OOM is an increase of its ``oom_kill`` (or ``oom``) counter.

``fileno()`` is what to poll; ``read()`` returns how many OOMs happened
since the last call (0 when the wake-up was something else).
"""
import os
import select
import sys

from ocirt.cgroups.fs import read_file, write_file
from ocirt.errors import OcirtError


class OomWatcher:
    def __init__(self, manager):
        self._fds = []
        memory_v1 = manager.path("memory") if manager.mode != "v2" else None
        if memory_v1:
            self.kind = "v1"
            self.poll_mask = select.POLLIN
            self._open_v1(memory_v1)
        elif manager.unified and os.path.exists(os.path.join(manager.unified, "memory.events")):
            self.kind = "v2"
            self.poll_mask = select.POLLPRI | select.POLLERR
            self._events = os.path.join(manager.unified, "memory.events")
            self._fd = os.open(self._events, os.O_RDONLY | os.O_CLOEXEC)
            self._fds.append(self._fd)
            self._last = self._count()
        else:
            raise OcirtError("OOM events need the memory controller (v1 memory.oom_control or v2 memory.events)")

    def _open_v1(self, directory):
        from ocirt.linux._libc import lib
        control = os.open(os.path.join(directory, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        self._fds.append(control)
        efd = lib.eventfd(0, lib.EFD_CLOEXEC)
        if efd < 0:
            self.close()
            raise OcirtError("cannot create an eventfd for OOM notifications")
        self._fds.append(efd)
        self._fd = efd
        try:
            write_file(os.path.join(directory, "cgroup.event_control"), f"{efd} {control}")
        except OSError as exc:
            self.close()
            raise OcirtError(f"cannot register for OOM events in {directory}: {exc.strerror}") from None

    def _count(self):
        counts = {}
        try:
            text = read_file(self._events)
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            counts[key] = int(value or 0)
        return counts.get("oom_kill", 0) or counts.get("oom", 0)

    def fileno(self):
        return self._fd

    def read(self):
        if self.kind == "v1":
            try:
                return int.from_bytes(os.read(self._fd, 8), sys.byteorder)
            except BlockingIOError:
                return 0
        now = self._count()
        new, self._last = max(now - self._last, 0), now
        return new

    def close(self):
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
