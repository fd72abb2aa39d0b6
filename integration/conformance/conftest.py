import os

import pytest

from integration.conformance.harness import Runtime, runtime_binary, safe_rmtree, scratch_dir


@pytest.fixture(scope="session")
def runtime_path():
    path = runtime_binary()
    if not os.access(path, os.X_OK):
        pytest.fail(f"runtime under test {path!r} is not executable")
    return path


@pytest.fixture(scope="session")
def session_dir():
    path = scratch_dir("ocirt-conformance-")
    yield path
    safe_rmtree(path)


@pytest.fixture
def rt(runtime_path, session_dir, request):
    """The runtime under test with a private --root; every container it made
    is force-deleted afterwards, even when the test failed half way."""
    name = request.node.name.replace("/", "_")[:60]
    work = os.path.join(session_dir, name)
    os.makedirs(work, mode=0o755)
    runtime = Runtime(runtime_path, os.path.join(work, "root"), work)
    yield runtime
    runtime.cleanup()
    safe_rmtree(work)
