"""Progress for ocirt-mkcw: a one-line bar on a terminal, silence otherwise."""
import os
import time


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, stream=None, enabled=None):
        import sys
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = self.done = 0
        self.phase = ""
        self._last = 0.0
        # OCIRT_MKCW_TIMES=1: one line per phase with its start time (for benchmarks)
        self._times = os.environ.get("OCIRT_MKCW_TIMES") == "1"
        self._t0 = time.monotonic()

    def start(self, phase, total=0):
        if self._times:
            self.stream.write(f"ocirt-mkcw: +{time.monotonic() - self._t0:.3f}s {phase}\n")
        self.phase, self.total, self.done = phase, total, 0
        self._draw(force=True)

    def mark(self, event):
        """An event inside a phase: a timing line (OCIRT_MKCW_TIMES=1) and nothing else."""
        if self._times:
            self.stream.write(f"ocirt-mkcw: +{time.monotonic() - self._t0:.3f}s {event}\n")

    def advance(self, n):
        self.done += n
        self._draw()

    def _draw(self, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            line = f"\r{self.phase:<22} [{bar:<30}] {frac * 100:5.1f}%"
        else:
            line = f"\r{self.phase:<22}" + " " * 40
        self.stream.write(line)
        self.stream.flush()

    def finish(self):
        if self._times:
            self.stream.write(f"ocirt-mkcw: +{time.monotonic() - self._t0:.3f}s done\n")
        if self.enabled:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
