"""The runc CLI contract clients parse (reference oci-runtime-cli.md §1, §3,
§7, §8): not runtime-spec requirements, but what podman, CRI-O and the
containerd shim rely on."""
import json
import os

from integration.conformance.harness import RFC3339, sh


def test_create_start_delete_print_nothing(rt):
    """Reference §1 rule 3: nothing on stdout/stderr for a successful create
    (under conmon they are the container's log streams), start or delete."""
    ctr = rt.container(["true"])
    ctr.create()
    assert ctr.stdout() == "" and ctr.stderr() == ""
    res = ctr.start()
    assert (res.stdout, res.stderr) == ("", "")
    ctr.wait()
    res = ctr.delete()
    assert (res.stdout, res.stderr) == ("", "")


def test_start_does_not_read_stdin(rt):
    """Reference §3 / CLI spec: `start` must not read stdin."""
    ctr = rt.container(sh("echo started"))
    ctr.create()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"left for the caller\n")
        res = rt.call("start", ctr.id, stdin=read_end)
        assert res.returncode == 0, res.stderr
        os.set_blocking(read_end, False)
        assert os.read(read_end, 100) == b"left for the caller\n"
    finally:
        os.close(read_end)
        os.close(write_end)
    ctr.wait()
    assert ctr.stdout() == "started\n"


def test_failed_create_logs_one_json_line(rt):
    """Reference §8.1: with `--log F --log-format json` a failed create writes
    exactly one line {"level":"error","msg":...,"time":RFC 3339} (podman
    unmarshals the whole file as one object) and the message to stderr."""
    log = os.path.join(rt.workdir, "oci-log")
    ctr = rt.container(["true"], mutate=lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 40000, "hard": 40000}]))
    with open(ctr.stderr_path, "wb") as err:
        res = rt.call("--log", log, "--log-format", "json", "create", "--bundle", ctr.bundle, ctr.id,
                      stdout=err, stderr=err)
    assert res.returncode == 1
    with open(log) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["msg"] and RFC3339.match(entry["time"]), entry
    assert ctr.stderr().strip(), "no message on stderr"


def test_list_json(rt):
    """Reference §3 `list --format json`: an array of state objects."""
    ctr = rt.container(["sleep", "600"])
    ctr.create()
    res = rt.call("list", "--format", "json", check=True)
    entries = json.loads(res.stdout)
    assert [e["id"] for e in entries] == [ctr.id]
    assert entries[0]["status"] == "created" and entries[0]["pid"] == ctr.pid


def test_ps_json(rt):
    """Reference §7.2 `ps --format json`: a bare JSON array of host pids
    (the containerd shim's `ps`)."""
    ctr = rt.container(["sleep", "600"])
    ctr.create()
    ctr.start()
    res = rt.call("ps", "--format", "json", ctr.id, check=True)
    assert json.loads(res.stdout) == [ctr.pid]


def test_features(rt):
    """Reference §11: `features` prints the features document with the two
    REQUIRED fields (CRI-O refuses it without them)."""
    res = rt.call("features", check=True)
    doc = json.loads(res.stdout)
    assert doc["ociVersionMin"] and doc["ociVersionMax"]


def test_version(rt):
    """Reference §7.2: `--version` first line `<name> version X`, then
    `commit:` and `spec:` lines (podman and CRI-O probe it)."""
    lines = rt.call("--version", check=True).stdout.splitlines()
    assert " version " in lines[0]
    assert any(line.startswith("spec:") for line in lines[1:])

