"""POSIX-platform hooks: runtime-spec config.md "Hooks" and runtime.md
"Lifecycle" (reference §9.2)."""
import json
import os
import time

import pytest

from integration.conformance.harness import Runtime, process_gone, safe_rmtree, scratch_dir, sh

CREATE_HOOKS = ["prestart", "createRuntime", "createContainer"]
ALL_HOOKS = CREATE_HOOKS + ["startContainer", "poststart", "poststop"]
EXPECTED_STATUS = {"prestart": "created", "createRuntime": "creating", "createContainer": "creating",
                   "startContainer": "created", "poststart": "running", "poststop": "stopped"}
IN_CONTAINER_DIR = "/hooks"


def recording_hook(name, out_dir, env=None):
    """A hook saving its stdin (the state JSON), its mount namespace and its
    place in the order.  startContainer resolves its path and runs inside the
    container, so it writes to the bind mount of ``out_dir``."""
    where = IN_CONTAINER_DIR if name == "startContainer" else out_dir
    script = (f"cat > {where}/{name}.json; readlink /proc/self/ns/mnt > {where}/{name}.mntns; "
              f"echo {name} >> {where}/order")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    if env:
        hook["env"] = env
    return hook


def bind_hook_dir(config, out_dir):
    config["mounts"].append({"destination": IN_CONTAINER_DIR, "type": "bind", "source": out_dir,
                             "options": ["bind"]})


@pytest.fixture(scope="module")
def hook_run(runtime_path):
    """One container through its whole lifecycle with all six hooks, recording
    what each hook saw and which hooks had run after each operation."""
    work = scratch_dir("ocirt-conformance-hooks-")
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir, mode=0o777)
    os.chmod(out_dir, 0o777)
    rt = Runtime(runtime_path, os.path.join(work, "root"), work)

    def mutate(config):
        bind_hook_dir(config, out_dir)
        config["hooks"] = {name: [recording_hook(name, out_dir, env=["CONFORMANCE_HOOK_VAR=yes"]
                                                 if name == "createRuntime" else None)] for name in ALL_HOOKS}
        config["hooks"]["createRuntime"][0]["args"][2] += "; echo $CONFORMANCE_HOOK_VAR > " + out_dir + "/env"

    ctr = rt.container(["sh", "-c", "sleep 0.3"], mutate=mutate)
    record = {"ctr": ctr, "out": out_dir, "host_mntns": os.readlink("/proc/self/ns/mnt")}

    def ran():
        try:
            with open(os.path.join(out_dir, "order")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []
    try:
        record["create"] = ctr.create(check=False)
        record["after_create"] = record["after_start"] = ran()
        if ctr.pid:
            record["ctr_mntns"] = os.readlink(f"/proc/{ctr.pid}/ns/mnt")
            ctr.start(check=False)
            record["after_start"] = ran()
            ctr.wait()
            ctr.delete(check=False)
        record["after_delete"] = ran()
        yield record
    finally:
        rt.cleanup()
        safe_rmtree(work)


def processes_in_pidns(ns):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns and not process_gone(int(entry)):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def read_state(hook_run, name):
    path = os.path.join(hook_run["out"], f"{name}.json")
    if not os.path.exists(path):
        pytest.fail(f"{name} hook did not run (ran: {hook_run['after_delete']}; create: {hook_run['create'].stderr})")
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize("name", ALL_HOOKS)
def test_hook_receives_state_on_stdin(hook_run, name):
    """config.md "POSIX-platform Hooks": each hook gets the container's state
    on stdin, with the `status` of the lifecycle point it runs at:
    createRuntime/createContainer `creating` (steps of create),
    startContainer `created`, poststart `running`, poststop `stopped`.
    prestart `created`: the spec 1.0 hook that runs once the environment is
    created, before the user program (runtime-tools `hooks_stdin` checks
    `created`; runc says `creating`, crun `created`).  runtime.md "State":
    `pid` is as seen by the runtime for hooks in the runtime namespace and as
    seen by the container (1, new pid namespace) for hooks in the container's."""
    state = read_state(hook_run, name)
    ctr = hook_run["ctr"]
    assert state["id"] == ctr.id
    assert state["bundle"] == ctr.bundle
    assert state["status"] == EXPECTED_STATUS[name]
    if name in ("createContainer", "startContainer"):
        # "as seen by the container" for hooks in the container namespace
        assert state.get("pid") == 1
    elif name != "poststop":
        assert state.get("pid") == ctr.pid


def test_hooks_run_in_order_at_their_lifecycle_points(hook_run):
    """runtime.md "Lifecycle": prestart, createRuntime, createContainer during
    create (steps 3-5); startContainer then poststart during start (7, 9);
    poststop during delete (13)."""
    assert hook_run["after_create"] == CREATE_HOOKS
    assert hook_run["after_start"] == ALL_HOOKS[:5]
    assert hook_run["after_delete"] == ALL_HOOKS


def test_hook_namespaces(hook_run):
    """config.md "createRuntime Hooks" run in the runtime namespace,
    "createContainer Hooks" and "startContainer Hooks" in the container
    namespace; poststart/poststop in the runtime namespace."""
    def mntns(name):
        with open(os.path.join(hook_run["out"], f"{name}.mntns")) as f:
            return f.read().strip()
    assert hook_run.get("ctr_mntns"), "container did not get created"
    seen = {name: mntns(name) for name in ALL_HOOKS}
    expected = {name: hook_run["ctr_mntns"] if name in ("createContainer", "startContainer")
                else hook_run["host_mntns"] for name in ALL_HOOKS}
    assert seen == expected


def test_hook_env(hook_run):
    """config.md "Hooks": `env` is the hook's environment."""
    with open(os.path.join(hook_run["out"], "env")) as f:
        assert f.read() == "yes\n"


def test_state_during_create_is_creating(rt):
    """runtime.md "State": `creating` is the status while the container is
    being created; `state` queried from a createRuntime hook sees it."""
    out = os.path.join(rt.workdir, "state-during-create.json")
    ctr = rt.container(["true"])
    cmd = f"{rt.binary} --root {rt.root} state {ctr.id} > {out} 2>&1"
    ctr.edit_config(lambda config: config.update(
        hooks={"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", cmd]}]}))
    ctr.create(check=False)
    with open(out) as f:
        text = f.read()
    try:
        status = json.loads(text)["status"]
    except ValueError:
        pytest.fail(f"state during create failed: {text.strip()}")
    assert status == "creating"


def test_hook_timeout(rt):
    """config.md "Hooks": `timeout` is the number of seconds before aborting
    the hook; a prestart hook past its timeout fails create."""
    def mutate(config):
        config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    ctr = rt.container(["true"], mutate=mutate)
    began = time.monotonic()
    res = ctr.create(check=False)
    elapsed = time.monotonic() - began
    assert res.returncode != 0
    assert elapsed < 10, f"create took {elapsed:.1f}s with a 1s hook timeout"
    assert rt.call("state", ctr.id).returncode != 0


@pytest.mark.parametrize("name", CREATE_HOOKS)
def test_failing_create_hook_aborts_create(rt, name):
    """runtime.md "Lifecycle" steps 3-5: if a prestart/createRuntime/
    createContainer hook fails, the runtime MUST generate an error, stop the
    container and undo create: no container, no process left."""
    out = os.path.join(rt.workdir, "hook-state.json")

    pidns_file = os.path.join(rt.workdir, "hook-pidns")
    script = f"cat > {out}; readlink /proc/self/ns/pid > {pidns_file}; exit 3"

    def mutate(config):
        config["hooks"] = {name: [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}
    ctr = rt.container(sh("echo ran"), mutate=mutate)
    res = ctr.create(check=False)
    assert res.returncode != 0
    assert rt.call("state", ctr.id).returncode != 0
    with open(out) as f:
        pid = json.load(f).get("pid")
    with open(pidns_file) as f:
        hook_pidns = f.read().strip()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if hook_pidns != os.readlink("/proc/self/ns/pid"):
            survivors = processes_in_pidns(hook_pidns)   # a hook inside the container
        else:
            survivors = [pid] if pid and not process_gone(pid) else []
        if not survivors:
            break
        time.sleep(0.02)
    assert not survivors, f"container processes {survivors} survived a failed create"
    assert "ran" not in ctr.stdout()


def test_failing_start_container_hook_fails_start(rt):
    """runtime.md "Lifecycle" step 7: if a startContainer hook fails, the
    runtime MUST generate an error and stop the container; the user program
    does not run."""
    def mutate(config):
        config["hooks"] = {"startContainer": [{"path": "/bin/false", "args": ["false"]}]}
    ctr = rt.container(sh("echo ran"), mutate=mutate)
    ctr.create()
    assert ctr.start(check=False).returncode != 0
    ctr.wait()
    assert "ran" not in ctr.stdout()


def test_failing_poststart_hook_only_warns(rt):
    """config.md "Poststart" (runtime-spec ≤ 1.2, as runtime-tools checks):
    a failing poststart hook is logged as a warning, `start` still succeeds
    and the program keeps running.  (runtime-spec 1.3.0 made it fatal.)"""
    def mutate(config):
        config["hooks"] = {"poststart": [{"path": "/bin/false", "args": ["false"]}]}
    ctr = rt.container(sh("echo ran"), mutate=mutate)
    ctr.create()
    res = ctr.start(check=False)
    ctr.wait()
    assert res.returncode == 0, res.stderr
    assert ctr.stdout() == "ran\n"


def test_failing_poststop_hook_only_warns(rt):
    """runtime.md "Lifecycle" step 13: a failing poststop hook is only a
    warning: delete succeeds and the container is gone."""
    def mutate(config):
        config["hooks"] = {"poststop": [{"path": "/bin/false", "args": ["false"]}]}
    ctr = rt.container(["true"], mutate=mutate)
    ctr.create()
    ctr.start()
    ctr.wait()
    res = ctr.delete(check=False)
    assert res.returncode == 0, res.stderr
    assert rt.call("state", ctr.id).returncode != 0


def test_hook_args_argv0(rt):
    """config.md "Hooks": `args` has execv semantics: args[0] is the hook's
    argv[0], independent of `path`."""
    out = os.path.join(rt.workdir, "argv0")
    ctr = rt.container(["true"], mutate=lambda c: c.update(hooks={"createRuntime": [
        {"path": "/bin/sh", "args": ["conformance-argv0", "-c",
                                     f"tr '\\0' '\\n' < /proc/$$/cmdline | head -n 1 > {out}; echo $0 >> {out}",
                                     "dollar-zero"]}]}))
    ctr.create()
    with open(out) as f:
        assert f.read() == "conformance-argv0\ndollar-zero\n"


def test_poststop_runs_on_forced_delete(rt):
    """runtime.md "Lifecycle" steps 11-13: `delete --force` of a running
    container still runs the poststop hooks, with status `stopped`."""
    out = os.path.join(rt.workdir, "poststop.json")
    ctr = rt.container(["sleep", "600"], mutate=lambda c: c.update(hooks={"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}"]}]}))
    ctr.create()
    ctr.start()
    ctr.delete("--force")
    with open(out) as f:
        state = json.load(f)
    assert state["id"] == ctr.id and state["status"] == "stopped"


def test_prestart_sees_container_namespaces(rt):
    """config.md "Prestart"/"CreateRuntime": called after the container's
    namespaces exist: through the state `pid` the hook reaches the container's
    network namespace (what CNI plugins do)."""
    out = os.path.join(rt.workdir, "hook-netns")
    script = (f"pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); "
              f"readlink /proc/$pid/ns/net > {out}")
    ctr = rt.container(["sleep", "600"], mutate=lambda c: c.update(hooks={
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}))
    ctr.create()
    with open(out) as f:
        seen = f.read().strip()
    assert seen == os.readlink(f"/proc/{ctr.pid}/ns/net") != os.readlink("/proc/self/ns/net")


def test_hook_env_is_exactly_env(rt):
    """config.md "Hooks": `env` has environ(7) semantics: the hook's
    environment is exactly the listed variables, nothing of the runtime's."""
    out = os.path.join(rt.workdir, "hook-environ")
    ctr = rt.container(["true"], mutate=lambda c: c.update(hooks={"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"cat /proc/$$/environ > {out}"],
         "env": ["CONF_ONE=1", "CONF_TWO=two words"]}]}))
    ctr.create()
    with open(out) as f:
        assert sorted(v for v in f.read().split("\0") if v) == ["CONF_ONE=1", "CONF_TWO=two words"]


def test_hook_timeout_kills_hook(rt):
    """config.md "Hooks" `timeout`: the hook is aborted, not left running
    after create gave up on it."""
    pid_file = os.path.join(rt.workdir, "hook.pid")
    ctr = rt.container(["true"], mutate=lambda c: c.update(hooks={"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"], "timeout": 1}]}))
    assert ctr.create(check=False).returncode != 0
    with open(pid_file) as f:
        pid = int(f.read())
    deadline = time.monotonic() + 5
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_gone(pid), f"hook {pid} still running after its timeout"
