"""Lifecycle, state and operations: runtime-spec runtime.md."""
import datetime
import os
import re
import subprocess
import time

from integration.conformance.harness import RFC3339, process_gone, sh, wait_gone

LONG = ["sleep", "600"]


def parse_rfc3339(text):
    """RFC 3339 with any fraction length (Go writes nanoseconds)."""
    m = re.match(r"^(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    fraction = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat(f"{m.group(1)}.{fraction}{zone}")


def test_state_after_create(rt):
    """runtime.md "State": after create the status is `created`, `pid` is the
    container process's (an integer, as in the pid file), `bundle` is the
    absolute bundle path, `id` and `ociVersion` are present; runc's clients
    decode `created` as RFC 3339 (reference §7.1)."""
    ctr = rt.container(LONG)
    ctr.create()
    state = ctr.state()
    assert state["status"] == "created"
    assert state["id"] == ctr.id
    assert isinstance(state["ociVersion"], str) and state["ociVersion"]
    assert type(state["pid"]) is int and state["pid"] == ctr.pid > 0
    assert not process_gone(state["pid"])
    assert state["bundle"] == ctr.bundle and os.path.isabs(state["bundle"])
    assert RFC3339.match(state["created"]), state["created"]
    created = parse_rfc3339(state["created"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()) < 120


def test_user_program_not_run_by_create(rt):
    """runtime.md "Lifecycle" step 2: create MUST NOT run the user-specified
    program; it runs only after `start`."""
    ctr = rt.container(sh("echo ran"))
    ctr.create()
    time.sleep(0.2)
    assert ctr.stdout() == ""
    ctr.start()
    ctr.wait()
    assert ctr.stdout() == "ran\n"


def test_config_changes_after_create_have_no_effect(rt):
    """runtime.md "Lifecycle" step 2: any updates to config.json after create
    MUST NOT affect the container."""
    ctr = rt.container(sh("echo original"))
    ctr.create()
    with open(os.path.join(ctr.bundle, "config.json")) as f:
        text = f.read()
    with open(os.path.join(ctr.bundle, "config.json"), "w") as f:
        f.write(text.replace("echo original", "echo changed"))
    ctr.start()
    ctr.wait()
    assert ctr.stdout() == "original\n"


def test_state_relative_bundle_is_absolute(rt):
    """runtime.md "State": `bundle` MUST be an absolute path even when
    create was given a relative --bundle."""
    ctr = rt.container(LONG)
    ctr.create(bundle=os.path.basename(ctr.bundle), cwd=os.path.dirname(ctr.bundle))
    assert ctr.state()["bundle"] == ctr.bundle


def test_state_running_then_stopped(rt):
    """runtime.md "State": `running` while the user process executes,
    `stopped` after it exited."""
    ctr = rt.container(sh("read line"))
    read_end, write_end = os.pipe()
    try:
        ctr.create(stdin=read_end)
        ctr.start()
        state = ctr.state()
        assert state["status"] == "running"
        assert state["pid"] == ctr.pid
        os.write(write_end, b"go\n")
        ctr.wait()
        assert ctr.state()["status"] == "stopped"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_state_unknown_id_fails(rt):
    """runtime.md "Operations/Query State": MUST generate an error if the
    container does not exist."""
    res = rt.call("state", rt.new_id("missing"))
    assert res.returncode != 0


def test_create_duplicate_id_fails(rt):
    """runtime.md "Operations/Create": MUST generate an error if the ID is not
    unique; clients match runc's wording "container with given ID already
    exists" (reference §8.3)."""
    first = rt.container(LONG)
    first.create()
    second = rt.container(LONG)
    second.id = first.id
    res = second.create(check=False)
    assert res.returncode != 0
    assert "container with given ID already exists" in res.stderr
    assert first.state()["status"] == "created"
    assert not process_gone(first.pid)


def test_create_invalid_id_fails(rt):
    """runtime.md "Operations/Create": an invalid ID is an error; an ID that
    resolves to another path (`..`) must not touch anything outside --root
    (reference §2, container ID rule)."""
    ctr = rt.container(LONG)
    ctr.id = "../escape"
    res = ctr.create(check=False)
    assert res.returncode != 0
    assert not os.path.exists(os.path.join(os.path.dirname(rt.root), "escape"))


def test_start_twice_fails(rt):
    """runtime.md "Operations/Start": MUST generate an error if the container
    is not `created`."""
    ctr = rt.container(LONG)
    ctr.create()
    ctr.start()
    assert ctr.start(check=False).returncode != 0
    assert ctr.state()["status"] == "running"


def test_start_stopped_fails(rt):
    """runtime.md "Operations/Start": start of a stopped container is an error
    and must not run the program again."""
    ctr = rt.container(sh("echo once"))
    ctr.create()
    ctr.start()
    ctr.wait()
    assert ctr.start(check=False).returncode != 0
    time.sleep(0.1)
    assert ctr.stdout() == "once\n"


def test_start_unknown_id_fails(rt):
    """runtime.md "Operations/Start": MUST generate an error for an unknown ID."""
    assert rt.call("start", rt.new_id("missing")).returncode != 0


def test_kill_created_container(rt):
    """runtime.md "Operations/Kill": a `created` container may be signalled;
    after SIGKILL it is `stopped` and its user program never ran."""
    ctr = rt.container(sh("echo ran"))
    ctr.create()
    ctr.kill("KILL")
    ctr.wait()
    assert ctr.state()["status"] == "stopped"
    assert ctr.stdout() == ""


def test_kill_signal_forms(rt):
    """runtime.md "Operations/Kill" + runc CLI: the signal is positional and
    accepted as a name with or without SIG, or a number (reference §3)."""
    script = 'trap "echo got-$S; exit 0" $S; echo ready; while :; do sleep 0.05; done'
    for sig, trapped in (("TERM", "TERM"), ("SIGUSR1", "USR1"), ("12", "USR2")):
        ctr = rt.container(sh(script.replace("$S", trapped)))
        ctr.create()
        ctr.start()
        deadline = time.monotonic() + 10
        while "ready" not in ctr.stdout() and time.monotonic() < deadline:
            time.sleep(0.02)
        ctr.kill(sig)
        ctr.wait()
        assert ctr.stdout() == f"ready\ngot-{trapped}\n", sig


def test_kill_stopped_fails(rt):
    """runtime.md "Operations/Kill": MUST generate an error if the container
    is neither `created` nor `running`."""
    ctr = rt.container(["true"])
    ctr.create()
    ctr.start()
    ctr.wait()
    assert ctr.kill("KILL", check=False).returncode != 0


def test_delete_running_without_force_fails(rt):
    """runtime.md "Operations/Delete": deleting a container that is not
    `stopped` MUST generate an error and MUST have no effect."""
    ctr = rt.container(LONG)
    ctr.create()
    ctr.start()
    assert ctr.delete(check=False).returncode != 0
    state = ctr.state()
    assert state["status"] == "running" and state["pid"] == ctr.pid
    assert not process_gone(ctr.pid)


def test_delete_created_without_force_fails(rt):
    """runtime.md "Operations/Delete": a `created` container is not `stopped`,
    so delete without --force MUST fail and leave it `created` (runtime-tools
    validation/delete checks exactly this; runc kills and removes instead)."""
    ctr = rt.container(LONG)
    ctr.create()
    res = ctr.delete(check=False)
    alive = not process_gone(ctr.pid)
    assert res.returncode != 0, "delete of a created container succeeded"
    assert alive and ctr.state()["status"] == "created"


def test_delete_force_running(rt):
    """runc CLI `delete --force`: kills a running container and removes it;
    afterwards state fails and the process is gone (runtime.md "Delete":
    resources created during create are removed)."""
    ctr = rt.container(LONG)
    ctr.create()
    ctr.start()
    ctr.delete("--force")
    wait_gone(ctr.pid)
    assert rt.call("state", ctr.id).returncode != 0


def test_delete_stopped_removes(rt):
    """runtime.md "Operations/Delete": deleting a stopped container removes it;
    the ID can then be reused."""
    ctr = rt.container(["true"])
    ctr.create()
    ctr.start()
    ctr.wait()
    ctr.delete()
    assert rt.call("state", ctr.id).returncode != 0
    ctr.create()
    assert ctr.state()["status"] == "created"


def test_delete_force_missing_id_succeeds(rt):
    """runc CLI: `delete --force` of a container that does not exist exits 0
    (podman and the containerd shim rely on it, reference §1 rule 8)."""
    res = rt.call("delete", "--force", rt.new_id("missing"))
    assert res.returncode == 0, res.stderr


def test_delete_missing_id_without_force_fails(rt):
    """runtime.md "Operations/Delete": an unknown ID is an error."""
    assert rt.call("delete", rt.new_id("missing")).returncode != 0


def test_pid_file(rt):
    """runc `--pid-file` (reference §6.2): written before create returns, the
    decimal host PID of the container process, no trailing newline."""
    ctr = rt.container(LONG)
    ctr.create()
    with open(ctr.pid_file, "rb") as f:
        raw = f.read()
    assert raw.isdigit(), raw
    assert int(raw) == ctr.state()["pid"]
    with open(f"/proc/{int(raw)}/status") as f:
        assert "PPid" in f.read()


def test_state_annotations(rt):
    """runtime.md "State": `annotations` are those of config.json."""
    annotations = {"org.example.conformance": "yes", "org.example.other": "1"}
    ctr = rt.container(LONG, mutate=lambda c: c.update(annotations=annotations))
    ctr.create()
    assert ctr.state().get("annotations") == annotations


def test_create_missing_executable_fails(rt):
    """runc CLI (reference §1 rule 10, §8.3): `process.args[0]` is checked at
    create, after pivot_root, and a missing one fails create with runc's
    "no such file or directory" wording, from which podman derives exit 127."""
    ctr = rt.container(["/no/such/binary"])
    res = ctr.create(check=False)
    assert res.returncode != 0
    assert "no such file or directory" in res.stderr.lower(), res.stderr
    assert rt.call("state", ctr.id).returncode != 0


def test_concurrent_creates_of_one_id(rt):
    """runtime.md "Operations/Create": the ID is unique; of two creates of the
    same ID racing each other exactly one wins and the other gets runc's
    "container with given ID already exists"."""
    first = rt.container(LONG)
    second = rt.container(LONG)
    second.id = first.id
    procs = []
    for ctr in (first, second):
        out = open(ctr.stderr_path, "wb")
        procs.append((subprocess.Popen([rt.binary, "--root", rt.root, "create", "--bundle", ctr.bundle,
                                        "--pid-file", ctr.pid_file, ctr.id],
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=out), out))
    codes = []
    for proc, out in procs:
        codes.append(proc.wait(timeout=60))
        out.close()
    assert sorted(codes)[0] == 0 and sorted(codes)[1] != 0, codes
    loser = (first, second)[codes.index(max(codes))]
    assert "container with given ID already exists" in loser.stderr()
    assert rt.state(first.id)["status"] == "created"


def cgroup_dirs(name):
    """Every cgroup directory called ``name`` at the top of a hierarchy."""
    found = []
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        path = os.path.join("/sys/fs/cgroup", hierarchy, name)
        if os.path.isdir(path):
            found.append(path)
    return found


def remove_leftover_cgroups(name):
    for path in cgroup_dirs(name):
        try:
            os.rmdir(path)
        except OSError:
            pass


def test_delete_removes_cgroups(rt):
    """runtime.md "Operations/Delete": deleting MUST delete the resources made
    at create: the container's cgroups (absolute `cgroupsPath`) exist while
    it is created and are gone after delete."""
    ctr = rt.container(["true"])
    name = f"{ctr.id}-cg"
    ctr.edit_config(lambda c: c["linux"].update(cgroupsPath=f"/{name}"))
    try:
        ctr.create()
        made = cgroup_dirs(name)
        assert made, "no cgroup made for cgroupsPath"
        with open(os.path.join(made[0], "cgroup.procs")) as f:
            assert str(ctr.pid) in f.read().split()
        ctr.start()
        ctr.wait()
        ctr.delete()
        assert cgroup_dirs(name) == []
    finally:
        remove_leftover_cgroups(name)


def test_failed_create_leaves_no_cgroups(rt):
    """runtime.md "Errors": a failed create leaves the environment as if it
    had not been attempted: no cgroup directories remain."""
    ctr = rt.container(["true"])
    name = f"{ctr.id}-cg"
    ctr.edit_config(lambda c: (c["linux"].update(cgroupsPath=f"/{name}"),
                               c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 40000,
                                                             "hard": 40000}])))
    try:
        assert ctr.create(check=False).returncode != 0
        assert cgroup_dirs(name) == []
    finally:
        remove_leftover_cgroups(name)


def test_kill_default_signal_is_term(rt):
    """runc CLI `kill ID` (reference §3): the signal defaults to SIGTERM."""
    ctr = rt.container(sh('trap "echo got-TERM; exit 0" TERM; echo ready; while :; do sleep 0.05; done'))
    ctr.create()
    ctr.start()
    deadline = time.monotonic() + 10
    while "ready" not in ctr.stdout() and time.monotonic() < deadline:
        time.sleep(0.02)
    rt.call("kill", ctr.id, check=True)
    ctr.wait()
    assert ctr.stdout() == "ready\ngot-TERM\n"


def test_process_killed_from_outside_is_stopped(rt):
    """runtime.md "Operations/Kill": whatever stopped the process, the status
    becomes `stopped` and delete works (here SIGKILL sent by the host)."""
    ctr = rt.container(LONG)
    ctr.create()
    ctr.start()
    os.kill(ctr.pid, 9)
    ctr.wait()
    assert ctr.state()["status"] == "stopped"
    ctr.delete()
    assert rt.call("state", ctr.id).returncode != 0


def test_delete_after_bundle_removed(rt):
    """runtime.md "Lifecycle" step 2: config.json edits after create have no
    effect; delete works from the runtime's own state even when the bundle
    is gone (clients unmount/remove storage around delete)."""
    ctr = rt.container(["true"])
    ctr.create()
    ctr.start()
    ctr.wait()
    moved = ctr.bundle + ".moved"
    os.rename(ctr.bundle, moved)
    try:
        res = ctr.delete(check=False)
    finally:
        os.rename(moved, ctr.bundle)
    assert res.returncode == 0, res.stderr
    assert rt.call("state", ctr.id).returncode != 0


def test_relative_pid_file(rt):
    """runc `--pid-file` (reference §6.2): a relative path is relative to the
    caller's working directory."""
    ctr = rt.container(LONG)
    with open(ctr.stdout_path, "wb") as out:
        res = rt.call("create", "--bundle", ctr.bundle, "--pid-file", "relative.pid", ctr.id,
                      cwd=ctr.bundle, stdout=out, stderr=out)
    assert res.returncode == 0
    with open(os.path.join(ctr.bundle, "relative.pid")) as f:
        assert int(f.read()) == ctr.state()["pid"]


def test_id_charset(rt):
    """Container ID rule (reference §2): letters, digits and `_+.-` are valid."""
    ctr = rt.container(LONG)
    ctr.id = f"Conf_{os.getpid()}+a.b-1"
    ctr.create()
    assert ctr.state()["id"] == ctr.id
