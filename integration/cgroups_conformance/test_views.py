"""Rerun test_resources.py in the other cgroup layouts, each in a private
mount namespace: "v1" (the unified mount removed: a cgroup-v1-only host)
and "v2" (cgroup2 mounted over /sys/fs/cgroup: a pure v2 host, where this
machine offers only the controllers not bound to v1, i.e. hugetlb)."""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIEWS = {
    "v1": "umount -l /sys/fs/cgroup/unified",
    "v2": "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup",
}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)")
@pytest.mark.skipif(os.environ.get("OCIRT_CGROUPS_VIEW") is not None, reason="already inside a view")
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_suite_in_view(view, capsys):
    if view == "v1" and not os.path.ismount("/sys/fs/cgroup/unified"):
        pytest.skip("no /sys/fs/cgroup/unified mount to hide: the host is not hybrid")
    if view == "v2" and not os.path.isdir("/sys/fs/cgroup/memory") and not os.path.ismount("/sys/fs/cgroup/unified"):
        pytest.skip("the host is already pure v2: test_resources.py covers it directly")
    from tests.support import ocirt_bin
    ocirt_bin()
    script = f'{VIEWS[view]} && exec "$0" -m pytest -q -rs -p no:cacheprovider ' \
             'integration/cgroups_conformance/test_resources.py'
    res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, sys.executable],
                         cwd=REPO, env=dict(os.environ, OCIRT_CGROUPS_VIEW=view), capture_output=True, text=True,
                         timeout=300)
    with capsys.disabled():
        for line in res.stdout.splitlines():
            if line.startswith(("SKIPPED", "FAILED")) or " passed" in line:
                sys.stdout.write(f"\n[{view} view] {line[:220]}")
        sys.stdout.write("\n")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
