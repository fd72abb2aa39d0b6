"""Validation seen from the command line: `ocirt features` and `ocirt create` with bad configs."""
import json
import os
import shutil
import tempfile

import pytest

from ocirt.spec import validate
from tests.support import make_bundle, ocirt_bin, run_ocirt


@pytest.fixture
def root():
    path = tempfile.mkdtemp(prefix="ocirt-validate-root-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def bundle_dir():
    ocirt_bin()                               # builds the cffi binding in place
    path = make_bundle()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_config(bundle, change):
    from ocirt.spec.default import default_spec
    config = default_spec(args=("sh", "-c", "true"), terminal=False)
    change(config)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)


def test_features_document_matches_schema(root):
    out = run_ocirt("features", root=root, check=True).stdout
    features = json.loads(out)
    validate.validate_features(features)
    assert features["linux"]["capabilities"] == list(validate.CAPABILITIES)


@pytest.mark.parametrize("change,line", [
    (lambda c: c["process"]["capabilities"]["bounding"].append("CAP_BOGUS"),
     'config.json: $.process.capabilities.bounding[3]: unknown capability "CAP_BOGUS"'),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
     'config.json: $.process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE" (also at $.process.rlimits[0])'),
    (lambda c: c["linux"]["namespaces"].append({"type": "uts"}),
     'config.json: $.linux.namespaces[6].type: duplicate namespace "uts" (also at $.linux.namespaces[3])'),
    (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
     "config.json: $.linux.seccomp.listenerMetadata: is set but listenerPath is not"),
    (lambda c: c.update(hooks={"poststart": [{"path": "true"}]}),
     'config.json: $.hooks.poststart[0].path: "true" is not an absolute path'),
])
def test_create_refuses_bad_config_with_one_line(root, bundle_dir, change, line):
    write_config(bundle_dir, change)
    res = run_ocirt("create", "--bundle", bundle_dir, "bad-config", root=root)
    assert res.returncode == 1, res
    # the CLI may wrap the message (runc-style `level=error msg="..."`); it must be there, on one line
    assert len(res.stderr.splitlines()) == 1, res.stderr
    assert line in res.stderr or json.dumps(line)[1:-1] in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    # nothing left behind: the ID is free again
    assert run_ocirt("state", "bad-config", root=root).returncode != 0
    assert not os.path.exists(os.path.join(root, "bad-config"))
