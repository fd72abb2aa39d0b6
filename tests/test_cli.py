"""The CLI front: Go flag conventions, verbs, error lines and exit codes."""
import json
import signal

import pytest

from ocirt.cli import GLOBAL_FLAGS, VERBS
from ocirt.cli.flags import parse_flags
from ocirt.container import parse_signal
from ocirt.errors import OcirtError, UsageError


def test_global_flags_stop_at_the_verb():
    opts, rest = parse_flags(GLOBAL_FLAGS, ["-root=/x", "--debug", "--log", "f", "create", "-b", "y", "id"], 0)
    assert opts["root"] == "/x" and opts["debug"] and opts["log"] == "f"
    assert rest == ["create", "-b", "y", "id"]


@pytest.mark.parametrize("argv,expected", [
    (["--detach=false", "id"], False), (["-d", "id"], True), (["--detach=true", "id"], True),
    (["-detach", "id"], True),
])
def test_boolean_forms(argv, expected):
    _m, flags, _u, stop = VERBS["run"]
    opts, args = parse_flags(flags, argv, stop)
    assert opts["detach"] is expected and args == ["id"]


def test_exec_arguments_after_the_id_are_not_parsed():
    _m, flags, _u, stop = VERBS["exec"]
    opts, args = parse_flags(flags, ["-t", "-e", "A=1", "--env=B=2", "--cap", "CAP_KILL", "c1", "ls", "-la"], stop)
    assert opts["tty"] and opts["env"] == ["A=1", "B=2"] and opts["cap"] == ["CAP_KILL"]
    assert args == ["c1", "ls", "-la"]


def test_unknown_flag_is_a_usage_error():
    with pytest.raises(UsageError, match="flag provided but not defined: -nope"):
        parse_flags(VERBS["start"][1], ["--nope", "x"])


@pytest.mark.parametrize("text,num", [("9", 9), ("KILL", 9), ("sigkill", 9), ("SIGTERM", 15), ("term", 15),
                                      ("SIGRTMIN+1", signal.SIGRTMIN + 1), (None, 15)])
def test_signal_names(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("bad", ["0", "99", "SIGNOPE", "RTMIN+999"])
def test_bad_signals(bad):
    with pytest.raises(OcirtError, match="unknown signal"):
        parse_signal(bad)


def test_version_and_features(ocirt):
    res = ocirt("--version")
    assert res.returncode == 0 and res.stdout.startswith("ocirt version ")
    assert "spec: " in res.stdout
    doc = json.loads(ocirt("features").stdout)
    assert doc["ociVersionMin"] and doc["ociVersionMax"]
    assert "user" in doc["linux"]["namespaces"] and "rro" in doc["mountOptions"]


def test_checkpoint_help_fails(ocirt):
    """podman treats `checkpoint --help` exiting 0 as "CRIU supported"."""
    assert ocirt("checkpoint", "--help").returncode != 0


def test_unknown_container_json_log(ocirt, tmp_path):
    log = tmp_path / "log.json"
    res = ocirt("--log", str(log), "--log-format", "json", "state", "nosuch")
    assert res.returncode == 1
    assert "container does not exist" in res.stderr and "Traceback" not in res.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 1  # podman parses the whole file as one object
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and "nosuch" in entry["msg"]
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_invalid_id(ocirt):
    res = ocirt("state", "../etc")
    assert res.returncode == 1 and "invalid container ID format" in res.stderr


def test_systemd_cgroup_is_a_clear_error(ocirt, bundle):
    res = ocirt("--systemd-cgroup", "create", "--bundle", bundle(), "x")
    assert res.returncode == 1 and "systemd" in res.stderr and "Traceback" not in res.stderr


def test_spec_writes_a_valid_config(ocirt, tmp_path):
    assert ocirt("spec", "--bundle", str(tmp_path)).returncode == 0
    config = json.loads((tmp_path / "config.json").read_text())
    from ocirt.spec.config import validate
    validate(config)
    assert ocirt("spec", "--bundle", str(tmp_path)).returncode == 1  # never overwrites
