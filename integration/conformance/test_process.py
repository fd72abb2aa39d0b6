"""The container process: runtime-spec config.md "Process" and
config-linux.md "Sysctl", "Seccomp"."""
import os
import subprocess

import pytest

from integration.conformance.harness import cap_mask, sh, status_fields

STATUS = ["cat", "/proc/self/status"]


def set_process(**fields):
    def mutate(config):
        config["process"].update(fields)
    return mutate


def test_user_uid_gid_additional_gids(rt):
    """config.md "User": the process runs with `uid`, `gid` and exactly the
    `additionalGids` as supplementary groups."""
    ctr = rt.container(STATUS, mutate=set_process(user={"uid": 1000, "gid": 1001, "additionalGids": [5, 65534]}))
    status = status_fields(ctr.run())
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1001"] * 4
    assert sorted(map(int, status["Groups"].split())) == [5, 65534]


def test_user_umask(rt):
    """config.md "User": `umask` is the process's file mode creation mask."""
    ctr = rt.container(sh("umask; touch /tmp/f; stat -c %a /tmp/f"),
                       mutate=set_process(user={"uid": 0, "gid": 0, "umask": 0o027}))
    assert ctr.run() == "0027\n640\n"


def test_root_user_without_additional_gids_has_no_host_groups(rt):
    """config.md "User": supplementary groups are exactly `additionalGids`;
    none from the runtime's own process leak in."""
    ctr = rt.container(STATUS, mutate=set_process(user={"uid": 0, "gid": 0}))
    groups = status_fields(ctr.run())["Groups"].split()
    assert groups in ([], ["0"])


def test_cwd(rt):
    """config.md "Process": `cwd` is the working directory of the process."""
    ctr = rt.container(["pwd"], mutate=set_process(cwd="/etc"))
    assert ctr.run() == "/etc\n"


def test_env(rt):
    """config.md "Process": `env` is the process environment (read from
    /proc/1/environ, the container process itself)."""
    env = ["PATH=/bin", "CONFORMANCE_A=1", "CONFORMANCE_B=with space=and equals"]
    ctr = rt.container(["cat", "/proc/self/environ"], mutate=set_process(env=env))
    seen = [e for e in ctr.run().split("\0") if e]
    assert set(env) <= set(seen)
    extra = sorted(set(seen) - set(env))
    assert all(e.startswith("HOME=") for e in extra), f"unexpected variables {extra}"


def test_args_exec_directly(rt):
    """config.md "Process": `args` is executed as is, with argv[0]."""
    ctr = rt.container(["sh", "-c", 'echo "$0|$1"', "zero", "one two"])
    assert ctr.run() == "zero|one two\n"


def test_hostname_domainname(rt):
    """config.md "Hostname", config-linux.md / "Domainname" (UTS namespace)."""
    def mutate(config):
        config["hostname"] = "conf-host"
        config["domainname"] = "conf.example"
    ctr = rt.container(sh("cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname"), mutate=mutate)
    assert ctr.run() == "conf-host\nconf.example\n"


def test_rlimits(rt):
    """config.md "POSIX process" `rlimits`: soft and hard values applied."""
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
               {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
               {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]
    ctr = rt.container(["cat", "/proc/self/limits"], mutate=set_process(rlimits=rlimits))
    limits = {}
    for line in ctr.run().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        limits[name] = (soft, hard)
    assert limits["Max open files"] == ("512", "1000")
    assert limits["Max processes"] == ("300", "400")
    assert limits["Max core file size"] == ("0", "4096")


def test_rlimit_too_high_fails_create(rt):
    """config.md `rlimits`: if the limit cannot be applied the runtime MUST
    generate an error.  Root here cannot raise RLIMIT_NOFILE above 20000
    (no CAP_SYS_RESOURCE, hard limit 20000), so create must fail and leave
    no container behind."""
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 40000, "hard": 40000}]
    ctr = rt.container(["true"], mutate=set_process(rlimits=rlimits))
    res = ctr.create(check=False)
    assert res.returncode != 0
    assert rt.call("state", ctr.id).returncode != 0
    # runtime.md "Errors": as if never attempted, so the ID is free again
    ctr.edit_config(lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]))
    ctr.create()


def test_rlimit_unknown_type_fails(rt):
    """config.md `rlimits`: an invalid `type` MUST be an error at create."""
    rlimits = [{"type": "RLIMIT_NOT_A_LIMIT", "soft": 1, "hard": 1}]
    ctr = rt.container(["true"], mutate=set_process(rlimits=rlimits))
    assert ctr.create(check=False).returncode != 0


BOUNDING = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_AUDIT_WRITE"]
PERMITTED = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
INHERITABLE = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
EFFECTIVE = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
AMBIENT = ["CAP_NET_BIND_SERVICE"]


def caps_config(user):
    def mutate(config):
        config["process"]["user"] = user
        config["process"]["capabilities"] = {"bounding": BOUNDING, "permitted": PERMITTED,
                                             "inheritable": INHERITABLE, "effective": EFFECTIVE,
                                             "ambient": AMBIENT}
        config["process"]["noNewPrivileges"] = False
    return mutate


def read_caps(text):
    status = status_fields(text)
    return {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_capabilities_non_root(rt):
    """config.md "Linux Process" `capabilities`: all five sets applied.  For a
    non-root user execve(2) keeps bounding and inheritable and makes
    permitted = effective = ambient (capabilities(7)), so these are exactly
    what /proc/self/status shows."""
    ctr = rt.container(STATUS, mutate=caps_config({"uid": 1000, "gid": 1000}))
    caps = read_caps(ctr.run())
    assert caps == {"CapBnd": cap_mask(BOUNDING), "CapInh": cap_mask(INHERITABLE), "CapAmb": cap_mask(AMBIENT),
                    "CapPrm": cap_mask(AMBIENT), "CapEff": cap_mask(AMBIENT)}


def test_capabilities_root(rt):
    """config.md `capabilities` for uid 0: bounding and inheritable exactly as
    configured; execve as root grants permitted = effective = bounding ∪
    inheritable (capabilities(7), root's file sets deemed full)."""
    ctr = rt.container(STATUS, mutate=caps_config({"uid": 0, "gid": 0}))
    caps = read_caps(ctr.run())
    assert caps["CapBnd"] == cap_mask(BOUNDING)
    assert caps["CapInh"] == cap_mask(INHERITABLE)
    assert caps["CapPrm"] == caps["CapEff"] == cap_mask(BOUNDING) | cap_mask(INHERITABLE)


def test_capabilities_default_bounding_excludes_others(rt):
    """config.md `capabilities`: a capability missing from `bounding` is not
    usable (CAP_CHOWN dropped: chown fails even as root)."""
    def mutate(config):
        config["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "permitted", "effective")}
    ctr = rt.container(sh("chown 1000 /tmp 2>/dev/null && echo chowned || echo denied"), mutate=mutate)
    assert ctr.run() == "denied\n"


def test_unknown_capability_fails(rt):
    """config.md `capabilities` as of runtime-spec 1.0 ("any value which
    cannot be mapped to a relevant kernel interface MUST cause an error"),
    which runtime-tools process_capabilities_fail checks and issue 2 requires.
    Since 1.1 the spec says such values MUST be logged as a warning and
    runtimes SHOULD NOT fail: runc follows the newer wording."""
    def mutate(config):
        config["process"]["capabilities"]["bounding"].append("CAP_NOT_A_CAPABILITY")
    ctr = rt.container(["true"], mutate=mutate)
    assert ctr.create(check=False).returncode != 0


@pytest.mark.parametrize("enabled", [True, False])
def test_no_new_privileges(rt, enabled):
    """config.md "Linux Process" `noNewPrivileges`: sets PR_SET_NO_NEW_PRIVS."""
    ctr = rt.container(STATUS, mutate=set_process(noNewPrivileges=enabled))
    assert status_fields(ctr.run())["NoNewPrivs"] == ("1" if enabled else "0")


def test_oom_score_adj(rt):
    """config.md "Linux Process" `oomScoreAdj`: written to oom_score_adj."""
    ctr = rt.container(["cat", "/proc/self/oom_score_adj"], mutate=set_process(oomScoreAdj=123))
    assert ctr.run() == "123\n"


def test_oom_score_adj_unset_is_inherited(rt):
    """config.md `oomScoreAdj`: when unset the runtime MUST NOT change it: the
    container inherits the value its runtime was started with (7 here)."""
    ctr = rt.container(["cat", "/proc/self/oom_score_adj"])
    wrap = ["/bin/sh", "-c", 'echo 7 > /proc/self/oom_score_adj && exec "$@"', "sh"]
    assert ctr.run(wrap=wrap) == "7\n"


def test_sysctl(rt):
    """config-linux.md "Sysctl": namespaced kernel parameters are set for the
    container (net in its network namespace, kernel.* IPC in its IPC
    namespace) and the host keeps its own values."""
    def mutate(config):
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}
    with open("/proc/sys/kernel/msgmax") as f:
        host_msgmax = f.read()
    ctr = rt.container(sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"), mutate=mutate)
    assert ctr.run() == "1\n12345\n"
    with open("/proc/sys/kernel/msgmax") as f:
        assert f.read() == host_msgmax


def test_sysctl_not_namespaced_fails(rt):
    """config-linux.md "Sysctl": a parameter that cannot be set for the
    container (kernel.hostname without a UTS namespace would change the
    host's) must not be applied; runc refuses at create."""
    def mutate(config):
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "uts"]
        config.pop("hostname", None)
        config["linux"]["sysctl"] = {"kernel.hostname": "conformance-must-not-leak"}
    with open("/proc/sys/kernel/hostname") as f:
        host_name = f.read()
    ctr = rt.container(["true"], mutate=mutate)
    res = ctr.create(check=False)
    with open("/proc/sys/kernel/hostname") as f:
        now = f.read()
    if now != host_name:
        subprocess.run(["hostname", host_name.strip()])
    assert now == host_name
    assert res.returncode != 0


def test_seccomp_errno(rt):
    """config-linux.md "Seccomp": a rule with action SCMP_ACT_ERRNO and
    `errnoRet` makes the syscall fail with that errno (EXDEV = 18 here);
    other syscalls are allowed by `defaultAction`."""
    def mutate(config):
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                      "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                                    "errnoRet": 18}]}
    ctr = rt.container(sh("mkdir /tmp/d 2>&1; echo still-running"), mutate=mutate)
    assert ctr.run() == "mkdir: can't create directory '/tmp/d': Invalid cross-device link\nstill-running\n"


def test_seccomp_argument_filter(rt):
    """config-linux.md "Seccomp" `args`: a rule applies only when the argument
    comparison matches (kill with signal 0 is refused, SIGCONT allowed)."""
    def mutate(config):
        config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
                          "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    ctr = rt.container(sh("kill -0 $$ 2>/dev/null && echo sig0-allowed || echo sig0-refused; "
                          "kill -CONT $$ && echo cont-allowed"), mutate=mutate)
    assert ctr.run() == "sig0-refused\ncont-allowed\n"


def test_args0_resolved_with_process_path(rt):
    """config.md "Process" `args`: args[0] has execvp(3) semantics, so it is
    looked up in the PATH of `process.env`; with a PATH not containing
    busybox's applets create fails (reference §1 rule 10: checked at create)."""
    ctr = rt.container(["sh", "-c", "true"], mutate=set_process(env=["PATH=/nowhere"]))
    res = ctr.create(check=False)
    assert res.returncode != 0
    ok = rt.container(["sh", "-c", "echo found"], mutate=set_process(env=["PATH=/usr/bin:/bin"]))
    assert ok.run() == "found\n"


def test_non_executable_args0_fails(rt):
    """runc CLI (reference §8.3): a non-executable args[0] fails create with
    "permission denied" in the message, which podman maps to exit 126."""
    ctr = rt.container(["/etc/passwd"])
    res = ctr.create(check=False)
    assert res.returncode != 0
    assert "permission denied" in res.stderr.lower(), res.stderr


def test_rlimit_duplicate_type_fails(rt):
    """config.md `rlimits` (reference §10): duplicate `type` entries are an
    error."""
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512},
               {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 256}]
    ctr = rt.container(["true"], mutate=set_process(rlimits=rlimits))
    assert ctr.create(check=False).returncode != 0


def test_umask_unset_is_inherited(rt):
    """config.md "User" `umask`: if unspecified, the umask SHOULD not be
    changed from the calling process' umask (0077 here)."""
    ctr = rt.container(["sh", "-c", "umask"])
    wrap = ["/bin/sh", "-c", 'umask 0077 && exec "$@"', "sh"]
    assert ctr.run(wrap=wrap) == "0077\n"


def test_seccomp_kill_process(rt):
    """config-linux.md "Seccomp": SCMP_ACT_KILL_PROCESS kills the process
    making the call with SIGSYS (the shell sees status 128+31)."""
    def mutate(config):
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                      "syscalls": [{"names": ["mkdir", "mkdirat"],
                                                    "action": "SCMP_ACT_KILL_PROCESS"}]}
    ctr = rt.container(sh("mkdir /tmp/d; echo status=$?"), mutate=mutate)
    assert ctr.run().splitlines()[-1] == "status=159"


def test_sysctl_unknown_key_fails(rt):
    """config-linux.md "Sysctl": a parameter that does not exist cannot be
    applied: create MUST fail (runtime.md lifecycle step 2)."""
    def mutate(config):
        config["linux"]["sysctl"] = {"net.ipv4.conformance_no_such_key": "1"}
    ctr = rt.container(["true"], mutate=mutate)
    assert ctr.create(check=False).returncode != 0
    assert rt.call("state", ctr.id).returncode != 0


def test_uid_without_passwd_entry(rt):
    """config.md "User": `uid`/`gid` are numeric; they need no entry in the
    container's /etc/passwd or /etc/group."""
    ctr = rt.container(sh("id -u; id -g"), mutate=set_process(user={"uid": 4242, "gid": 4343}))
    assert ctr.run() == "4242\n4343\n"


def test_missing_cwd(rt):
    """config.md "Process" `cwd`: runc creates a missing working directory;
    a runtime may instead refuse, but then with a clean error at create
    (never a crash, never a process in the wrong directory)."""
    ctr = rt.container(["pwd"], mutate=set_process(cwd="/does/not/exist/yet"))
    res = ctr.create(check=False)
    if res.returncode == 0:
        ctr.start()
        ctr.wait()
        assert ctr.stdout() == "/does/not/exist/yet\n"
    else:
        assert "/does/not/exist/yet" in res.stderr, res.stderr


def test_scheduler(rt):
    """config.md "Linux Process" `scheduler` (runtime-spec 1.1): policy and
    nice applied (SCHED_BATCH = 3 is field 41 of /proc/self/stat, nice is 19)."""
    ctr = rt.container(["cat", "/proc/self/stat"],
                       mutate=set_process(scheduler={"policy": "SCHED_BATCH", "nice": 5}))
    fields = ctr.run().rsplit(")", 1)[1].split()
    # fields[0] is stat field 3 (state)
    assert (fields[19 - 3], fields[41 - 3]) == ("5", "3")


def test_personality(rt):
    """config-linux.md "Personality": domain LINUX32 makes uname report a
    32-bit machine."""
    if os.uname().machine != "x86_64":
        pytest.skip("the i686 answer is specific to x86_64 hosts")
    ctr = rt.container(["uname", "-m"], mutate=lambda c: c["linux"].update(personality={"domain": "LINUX32"}))
    assert ctr.run() == "i686\n"
