"""The pure cgroup v2 path: tests/cgroups_v2_checks.py run in a private mount
namespace (unshare -m) where /sys/fs/cgroup is replaced by a cgroup2 mount."""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)")
def test_pure_v2_checks(capsys):
    from tests.support import ocirt_bin
    ocirt_bin()  # builds the cffi binding (the eBPF device filter needs it)
    script = ('umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && '
              'exec "$0" -m pytest -q -rs -p no:cacheprovider tests/cgroups_v2_checks.py')
    env = dict(os.environ, OCIRT_V2_INNER="1")
    res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, sys.executable],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    with capsys.disabled():
        summary = [line for line in res.stdout.splitlines() if line.startswith("SKIPPED") or " passed" in line]
        sys.stdout.write("\n[pure cgroup v2] " + "\n[pure cgroup v2] ".join(summary) + "\n")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout
