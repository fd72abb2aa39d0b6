import os
import tempfile
import uuid

import pytest

from tests.support import make_bundle, ocirt_bin, run_ocirt

ocirt_bin()  # build the cffi binding in place before any test imports ocirt.linux


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return str(d)


@pytest.fixture
def bundle(tmp_path):
    def _make(args=("sh", "-c", "true"), **kw):
        path = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}"
        return make_bundle(str(path), args=args, **kw)
    return _make


@pytest.fixture
def ocirt(root):
    def _run(*args, **kw):
        return run_ocirt(*args, root=root, **kw)
    return _run


def cid():
    return "t-" + uuid.uuid4().hex[:10]
