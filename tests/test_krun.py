"""The krun handler: selection, configuration mapping, and the libkrun binding
driven against the libkrun TEST DOUBLE (tests/krun/libkrun_double.c).

Binding tests run tests/krun/mini_init.py in a fresh interpreter: it does
what the core does around a handler (select, check, fork, before_pivot,
chroot, enter) so every libkrun call is made by a real process, and the
double records it.  The double boots no VM: it runs the described workload.
"""
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

import pytest

from ocirt import handlers
from ocirt.errors import ConfigError, OcirtError
from tests import support
from tests.krun import double
from tests.krun.double import SNP_CONFIG, krun_bundle

MINI_INIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "krun", "mini_init.py")

pytestmark = pytest.mark.skipif(not double.gcc_available(), reason="gcc is needed to build the libkrun test double")


@pytest.fixture(scope="session", autouse=True)
def libc_built():
    support.ocirt_bin()   # compiles ocirt.linux._libc in the tree


@pytest.fixture(scope="session")
def double_dir(tmp_path_factory):
    return double.build(str(tmp_path_factory.mktemp("libkrun-double")))


@pytest.fixture(scope="session")
def old_double_dir(tmp_path_factory):
    return double.build(str(tmp_path_factory.mktemp("libkrun-double-old")), old_api=True)


def config_of(path):
    with open(os.path.join(path, "config.json")) as f:
        return json.load(f)


def run_init(path, libdir, devices="kvm", prog=None, env=None, timeout=30, wait=True):
    log = os.path.join(path, "calls.log")
    cmd = [sys.executable, MINI_INIT, "--devices", devices] + (["--prog", prog] if prog else []) + [path]
    full_env = dict(os.environ, LIBKRUN_DOUBLE_LOG=log, HOST_SECRET="must-not-leak", **(env or {}))
    if libdir is not None:
        full_env["OCIRT_LIBKRUN_DIR"] = libdir
    else:
        full_env.pop("OCIRT_LIBKRUN_DIR", None)
    if not wait:
        return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), log
    res = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    return res, double.read_calls(log)


def calls_named(calls, name):
    return [c for c in calls if c["call"] == name]


# -- selection ----------------------------------------------------------------
class TestSelect:
    def test_no_request_means_no_handler(self, tmp_path):
        assert handlers.select({}, str(tmp_path), "ocirt") is None

    @pytest.mark.parametrize("name", ["krun", "krun-sev", "krun-tdx"])
    def test_annotation_names_the_handler(self, tmp_path, name):
        h = handlers.select({"annotations": {"run.oci.handler": name}}, str(tmp_path), "ocirt")
        assert h.name == name

    @pytest.mark.parametrize("prog", ["krun", "/usr/local/bin/krun", "/usr/local/bin/krun-ocirt"])
    def test_program_name_krun_selects_krun(self, tmp_path, prog):
        assert handlers.select({}, str(tmp_path), prog).name == "krun"

    @pytest.mark.parametrize("prog", ["ocirt", "krun"])
    def test_sandbox_never_gets_a_handler(self, tmp_path, prog):
        config = {"annotations": {"run.oci.handler": "krun", "io.kubernetes.cri.container-type": "sandbox"}}
        assert handlers.select(config, str(tmp_path), prog) is None

    def test_unknown_handler_is_an_error(self, tmp_path):
        with pytest.raises(ConfigError, match=r"annotations.run.oci.handler: unknown handler 'wasm'"):
            handlers.select({"annotations": {"run.oci.handler": "wasm"}}, str(tmp_path), "ocirt")

    def test_variant_annotation(self, tmp_path):
        config = {"annotations": {"run.oci.handler": "krun", "krun.variant": "sev"}}
        assert handlers.select(config, str(tmp_path), "ocirt").name == "krun-sev"
        with pytest.raises(ConfigError, match="krun.variant: unsupported variant 'aws-nitro'"):
            handlers.select({"annotations": {"run.oci.handler": "krun", "krun.variant": "aws-nitro"}},
                            str(tmp_path), "ocirt")
        with pytest.raises(ConfigError, match="krun.variant=sev contradicts run.oci.handler=krun-tdx"):
            handlers.select({"annotations": {"run.oci.handler": "krun-tdx", "krun.variant": "sev"}},
                            str(tmp_path), "ocirt")

    @pytest.mark.parametrize("tee,name", [(SNP_CONFIG, "krun-sev"), (dict(SNP_CONFIG, tee="sev"), "krun-sev"),
                                          (dict(SNP_CONFIG, tee="tdx"), "krun-tdx"), ("not json", "krun-sev")])
    def test_cw_image_picks_the_tee_variant(self, tmp_path, tee, name):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"}, tee=tee)
        assert handlers.select(config_of(path), os.path.join(path, "rootfs"), "ocirt").name == name
        assert handlers.select(config_of(path), os.path.join(path, "rootfs"), "krun").name == name

    def test_cw_image_without_request_gets_no_handler(self, tmp_path):
        path = krun_bundle(tmp_path, tee=SNP_CONFIG)
        assert handlers.select(config_of(path), os.path.join(path, "rootfs"), "ocirt") is None

    def test_selection_is_import_cheap(self):
        code = (f"import sys; sys.path.insert(0, {support.REPO!r}); from ocirt import handlers; "
                "assert handlers.select({'annotations': {}}, '/nonexistent', 'ocirt') is None; "
                "print(sorted(m for m in sys.modules if m == 'cffi' or m.startswith('ocirt.handlers.')))")
        out = subprocess.run([sys.executable, "-I", "-c", code], cwd=support.REPO, capture_output=True, text=True,
                             check=True).stdout
        assert out.strip() == "[]"


# -- configuration mapping -------------------------------------------------------
class TestSettings:
    from ocirt.handlers import krun as K

    def test_defaults_from_affinity_and_memory_limit(self):
        cpus = min(len(os.sched_getaffinity(0)), 16)
        assert self.K.vm_settings({}, "/", None) == {"cpus": cpus, "ram_mib": 1024, "nested_virt": False}
        limited = {"linux": {"resources": {"memory": {"limit": 512 << 20}}}}
        assert self.K.vm_settings(limited, "/", None)["ram_mib"] == 512
        unlimited = {"linux": {"resources": {"memory": {"limit": -1}}}}
        assert self.K.vm_settings(unlimited, "/", None)["ram_mib"] == 1024

    def test_annotations_win(self):
        config = {"annotations": {"krun.cpus": "3", "krun.ram_mib": "2048", "krun.nested_virt": "1"},
                  "linux": {"resources": {"memory": {"limit": 512 << 20}}}}
        assert self.K.vm_settings(config, "/", None) == {"cpus": 3, "ram_mib": 2048, "nested_virt": True}

    @pytest.mark.parametrize("key,value", [("krun.cpus", "-1"), ("krun.cpus", "abc"), ("krun.cpus", "1.5"),
                                           ("krun.cpus", "0"), ("krun.cpus", "256"), ("krun.cpus", "٣"),
                                           ("krun.ram_mib", "64"), ("krun.ram_mib", ""),
                                           ("krun.nested_virt", "yes")])
    def test_bad_integer_annotations(self, key, value):
        with pytest.raises(ConfigError, match=rf"annotations\.{key}: .* is not an integer in"):
            self.K.vm_settings({"annotations": {key: value}}, "/", None)

    @pytest.mark.parametrize("key", ["krun.gpu_flags", "krun.use_passt"])
    def test_unsupported_annotations_are_refused(self, key):
        with pytest.raises(ConfigError, match=f"annotations.{key}: not supported"):
            self.K.vm_settings({"annotations": {key: "1"}}, "/", None)

    def test_rlimits_use_numeric_ids(self):
        rl = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}, {"type": "RLIMIT_NPROC", "soft": 5, "hard": 5}]
        assert self.K.rlimit_strings(rl) == [f"{resource.RLIMIT_NOFILE}=512:1024", f"{resource.RLIMIT_NPROC}=5:5"]
        with pytest.raises(ConfigError, match=r"process.rlimits\[0\].type: unknown rlimit 'RLIMIT_BOGUS'"):
            self.K.rlimit_strings([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])
        with pytest.raises(ConfigError, match=r"process.rlimits\[0\]: soft/hard"):
            self.K.rlimit_strings([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}])

    def test_guest_config_carries_only_the_process_and_tmpfs_mounts(self):
        config = support_config()
        doc = self.K.guest_config(config)
        assert set(doc) == {"ociVersion", "process", "hostname", "mounts"}
        assert doc["process"]["args"] == config["process"]["args"]
        assert doc["mounts"] and all(m["type"] == "tmpfs" for m in doc["mounts"])
        assert "hooks" not in json.dumps(doc) and "secret-annotation" not in json.dumps(doc)

    def test_tee_settings_come_from_the_tee_config(self, tmp_path):
        path = krun_bundle(tmp_path, tee=SNP_CONFIG)
        rootfs = os.path.join(path, "rootfs")
        assert self.K.vm_settings({}, rootfs, "sev") == {"cpus": 2, "ram_mib": 512, "nested_virt": False,
                                                          "tee": "snp"}
        with pytest.raises(ConfigError, match="krun.cpus=4 contradicts cpus=2 in /krun-sev.json"):
            self.K.vm_settings({"annotations": {"krun.cpus": "4"}}, rootfs, "sev")
        with pytest.raises(ConfigError, match="krun.nested_virt: not available inside a TEE"):
            self.K.vm_settings({"annotations": {"krun.nested_virt": "1"}}, rootfs, "sev")
        with pytest.raises(OcirtError, match="tee 'snp' needs handler krun-sev, not krun-tdx"):
            self.K.vm_settings({}, rootfs, "tdx")

    @pytest.mark.parametrize("doc,message", [
        ({**SNP_CONFIG, "tee": "nitro"}, "tee: 'nitro' is not one of"),
        ({k: v for k, v in SNP_CONFIG.items() if k != "cpus"}, "cpus: None is not an integer"),
        ({**SNP_CONFIG, "ram_mib": "512"}, "ram_mib: '512' is not an integer"),
        ({**SNP_CONFIG, "workload_id": 7}, "workload_id: must be a string"),
        ([1, 2], "not a JSON object"),
    ])
    def test_bad_tee_config(self, tmp_path, doc, message):
        path = krun_bundle(tmp_path, tee=doc)
        with pytest.raises(OcirtError, match=message):
            self.K.vm_settings({}, os.path.join(path, "rootfs"), "sev")

    def test_tdx_limits(self, tmp_path):
        path = krun_bundle(tmp_path, tee={**SNP_CONFIG, "tee": "tdx", "cpus": 2})
        with pytest.raises(OcirtError, match="TDX guests allow at most 1 vCPU and 3072 MiB"):
            self.K.vm_settings({}, os.path.join(path, "rootfs"), "tdx")

    def test_tee_config_symlink_cannot_leave_the_rootfs(self, tmp_path):
        outside = tmp_path / "host-secret.json"
        outside.write_text(json.dumps(SNP_CONFIG))
        path = krun_bundle(tmp_path)
        os.symlink(str(outside), os.path.join(path, "rootfs", "krun-sev.json"))
        # resolved inside the rootfs, the absolute link points at nothing
        with pytest.raises(OcirtError, match="krun-sev.json: No such file or directory"):
            self.K.read_tee_config(os.path.join(path, "rootfs"))


def support_config():
    from ocirt.spec.default import default_spec
    config = default_spec(args=["echo", "hi"])
    config["hooks"] = {"prestart": [{"path": "/usr/libexec/host-hook"}]}
    config["annotations"] = {"secret-annotation": "x"}
    return config


class TestKrunConfigFile:
    from ocirt.handlers import krun as K

    def read(self, rootfs):
        with open(os.path.join(rootfs, ".krun_config.json")) as f:
            return json.load(f)

    def test_written_read_only(self, tmp_path):
        rootfs = str(tmp_path)
        self.K.write_krun_config(rootfs, support_config())
        st = os.lstat(os.path.join(rootfs, ".krun_config.json"))
        assert oct(st.st_mode & 0o777) == "0o444"
        assert self.read(rootfs)["process"]["args"] == ["echo", "hi"]

    def test_planted_symlink_is_not_followed(self, tmp_path):
        rootfs = tmp_path / "rootfs"
        rootfs.mkdir()
        victim = tmp_path / "host-file"
        victim.write_text("host data")
        os.symlink(str(victim), str(rootfs / ".krun_config.json"))
        self.K.write_krun_config(str(rootfs), support_config())
        assert victim.read_text() == "host data"
        assert not os.path.islink(rootfs / ".krun_config.json")
        assert self.read(str(rootfs))["process"]["args"] == ["echo", "hi"]

    def test_planted_hard_link_is_not_written_through(self, tmp_path):
        rootfs = tmp_path / "rootfs"
        rootfs.mkdir()
        victim = rootfs / "etc-shadow"
        victim.write_text("keep me")
        os.link(str(victim), str(rootfs / ".krun_config.json"))
        self.K.write_krun_config(str(rootfs), support_config())
        assert victim.read_text() == "keep me"

    def test_directory_in_the_way_is_a_clear_error(self, tmp_path):
        (tmp_path / ".krun_config.json").mkdir()
        with pytest.raises(OcirtError, match=r"\.krun_config\.json: cannot write the guest's process description"):
            self.K.write_krun_config(str(tmp_path), support_config())


def test_exec_refusal_is_specific():
    from ocirt.handlers.krun import KrunHandler
    message = KrunHandler("sev").exec_refusal()
    assert "krun-sev" in message and "microVM" in message and "\n" not in message


def test_extra_devices_use_host_numbers():
    from ocirt.handlers.krun import KrunHandler
    st = os.stat("/dev/kvm")
    assert KrunHandler().extra_devices({}) == [{"path": "/dev/kvm", "type": "c", "major": os.major(st.st_rdev),
                                                "minor": os.minor(st.st_rdev), "fileMode": 0o666, "uid": 0, "gid": 0}]
    assert KrunHandler().extra_devices({"linux": {"devices": [{"path": "/dev/kvm"}]}}) == []


# -- against the libkrun test double ---------------------------------------------
class TestWithDouble:
    def test_workload_runs_with_config_env_cwd_rlimits(self, tmp_path, double_dir):
        def mutate(c):
            c["process"]["env"].append("FOO=bar")
            c["process"]["cwd"] = "/tmp"
            c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]
        path = krun_bundle(tmp_path, args=["sh", "-c", "echo hello $FOO; pwd; ulimit -n; env; exit 7"],
                      annotations={"run.oci.handler": "krun", "krun.cpus": "2", "krun.ram_mib": "300"},
                      mutate=mutate)
        res, calls = run_init(path, double_dir)
        assert res.returncode == 7, res.stderr
        lines = res.stdout.splitlines()
        assert lines[:3] == ["hello bar", "/tmp", "512"]
        assert "HOST_SECRET" not in res.stdout
        names = double.call_names(calls)
        assert names[-1] == "krun_start_enter"
        assert names.index("krun_create_ctx") < names.index("krun_set_vm_config")
        (vm,) = calls_named(calls, "krun_set_vm_config")
        assert vm["args"][1:] == [2, 300]
        (fs,) = calls_named(calls, "krun_add_virtiofs2")
        assert fs["args"][1:] == ["/dev/root", "/", 512 << 20]
        (env,) = calls_named(calls, "krun_set_env")
        assert env["args"][1] == config_of(path)["process"]["env"]       # explicit, never NULL
        (rl,) = calls_named(calls, "krun_set_rlimits")
        assert rl["args"][1] == [f"{resource.RLIMIT_NOFILE}=512:1024"]
        assert not calls_named(calls, "krun_set_exec")   # the process goes through .krun_config.json
        # the context is made in the init before pivot_root, started after it
        (create,) = calls_named(calls, "krun_create_ctx")
        (start,) = calls_named(calls, "krun_start_enter")
        assert create["pid"] == start["pid"] and create["root_id"] != start["root_id"]
        loaded = calls_named(calls, "(loaded)")[0]
        assert loaded["pid"] != create["pid"]                             # check() ran on the runtime side
        with open(os.path.join(path, "rootfs", ".krun_config.json")) as f:
            assert json.load(f)["process"]["cwd"] == "/tmp"

    def test_mount_namespace_required(self, tmp_path, double_dir):
        def no_mount_ns(c):
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "mount"]
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"}, mutate=no_mount_ns)
        res, calls = run_init(path, double_dir)
        assert res.returncode == 2
        assert "linux.namespaces: the krun handler needs a mount namespace" in res.stderr
        assert calls == []

    @pytest.mark.parametrize("mutate,message", [
        (lambda c: c["process"]["env"].append("BIG=" + "x" * 70000), "process.env: over 61440 bytes"),
        (lambda c: c["process"]["env"].append("NUL=a\0b"), r"process.env\[2\]: must be a string without NUL"),
        (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]),
         "process.rlimits\\[0\\].type: unknown rlimit"),
    ])
    def test_guest_process_errors_at_check(self, tmp_path, double_dir, mutate, message):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"}, mutate=mutate)
        res, calls = run_init(path, double_dir)
        assert res.returncode == 2
        assert re.search(message, res.stderr), res.stderr
        assert not calls_named(calls, "krun_create_ctx")

    def test_missing_command_is_127(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, args=["no-such-command"], annotations={"run.oci.handler": "krun"})
        res, _ = run_init(path, double_dir)
        assert res.returncode == 127

    def test_program_name_krun(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, args=["sh", "-c", "echo via-prog"])
        res, calls = run_init(path, double_dir, prog="krun")
        assert res.returncode == 0 and res.stdout == "via-prog\n"
        assert calls_named(calls, "krun_start_enter")

    def test_nested_virt(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun", "krun.nested_virt": "1"})
        res, calls = run_init(path, double_dir)
        assert res.returncode == 0, res.stderr
        assert calls_named(calls, "krun_set_nested_virt")[0]["args"][1] is True

    @pytest.mark.parametrize("call,errno_,text", [("krun_start_enter", 22, "Invalid argument"),
                                                  ("krun_create_ctx", 12, "Cannot allocate memory"),
                                                  ("krun_set_vm_config", 22, "Invalid argument")])
    def test_negative_errno_names_the_call(self, tmp_path, double_dir, call, errno_, text):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"})
        res, calls = run_init(path, double_dir, env={"LIBKRUN_DOUBLE_FAIL": f"{call}:{errno_}"})
        assert res.returncode == 1
        assert f"init error: {call}: {text} (errno {errno_}, libkrun.so.1)" in res.stderr

    def test_sev_tee_boots_the_disk(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, args=["/entrypoint"], annotations={"run.oci.handler": "krun"}, tee=SNP_CONFIG)
        res, calls = run_init(path, double_dir, devices="kvm,sev")
        assert res.returncode == 0, res.stderr
        assert "TEE boot of /disk.img with /krun-sev.json is not simulated" in res.stderr
        assert {c["variant"] for c in calls} == {1}                       # libkrun-sev.so.1
        names = double.call_names(calls)
        assert calls_named(calls, "krun_set_vm_config")[0]["args"][1:] == [2, 512]
        assert calls_named(calls, "krun_set_root_disk")[0]["args"][1] == "/disk.img"
        assert calls_named(calls, "krun_set_tee_config_file")[0]["args"][1] == "/krun-sev.json"
        assert calls_named(calls, "krun_set_env")[0]["args"][1] == []    # empty, not NULL: no host env
        assert "krun_add_virtiofs2" not in names and "krun_set_rlimits" not in names
        assert not os.path.exists(os.path.join(path, "rootfs", ".krun_config.json"))
        devices = json.loads(res.stderr.split("devices ", 1)[1].splitlines()[0])
        assert [d["path"] for d in devices] == ["/dev/kvm", "/dev/sev"]

    def test_tdx_tee_loads_libkrun_tdx(self, tmp_path, double_dir):
        tee = {**SNP_CONFIG, "tee": "tdx", "cpus": 1, "ram_mib": 2048}
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun-tdx"}, tee=tee)
        res, calls = run_init(path, double_dir)
        assert res.returncode == 0, res.stderr
        assert {c["variant"] for c in calls} == {2}
        assert calls_named(calls, "krun_has_feature")[0]["args"] == [8]   # KRUN_FEATURE_INTEL_TDX
        assert calls_named(calls, "krun_set_vm_config")[0]["args"][1:] == [1, 2048]

    def test_tee_without_disk_fails_at_check(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun-sev"}, tee=SNP_CONFIG, disk=False)
        res, calls = run_init(path, double_dir, devices="kvm,sev")
        assert res.returncode == 2
        assert "disk.img: No such file or directory: a TEE container boots the image's encrypted disk" in res.stderr
        assert not calls_named(calls, "krun_create_ctx")

    def test_sev_without_dev_sev(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun-sev"}, tee=SNP_CONFIG)
        res, calls = run_init(path, double_dir, devices="kvm")
        assert res.returncode == 2
        assert "error: krun-sev: /dev/sev unavailable: No such file or directory" in res.stderr
        assert calls == []

    def test_without_dev_kvm(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"})
        res, calls = run_init(path, double_dir, devices="")
        assert res.returncode == 2
        assert "error: krun: /dev/kvm unavailable: No such file or directory" in res.stderr
        assert calls == []

    def test_missing_library(self, tmp_path):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"})
        empty = tmp_path / "empty"
        empty.mkdir()
        res, _ = run_init(path, str(empty))
        assert res.returncode == 2
        assert f"{empty}/libkrun.so.1: No such file or directory" in res.stderr
        res, _ = run_init(path, None)   # this host has no libkrun at all
        assert res.returncode == 2
        assert "error: krun: cannot load libkrun.so.1" in res.stderr and "install libkrun" in res.stderr
        assert not os.path.exists(os.path.join(path, "rootfs", ".krun_config.json"))

    def test_library_override_must_be_trusted(self, tmp_path, double_dir):
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun"})
        res, _ = run_init(path, "relative/dir")
        assert "OCIRT_LIBKRUN_DIR=relative/dir: must be an absolute path" in res.stderr
        loose = tmp_path / "loose"
        double.build(str(loose), variants={"libkrun.so.1": 0})
        os.chmod(loose, 0o777)
        res, calls = run_init(path, str(loose))
        assert res.returncode == 2
        assert "refusing: must be owned by root and not group/world-writable" in res.stderr
        assert calls == []

    def test_non_tee_library_refused_for_sev(self, tmp_path, double_dir):
        fake = tmp_path / "fake"
        double.build(str(fake), variants={"libkrun-sev.so.1": 0})   # a plain build under the SEV name
        path = krun_bundle(tmp_path, annotations={"run.oci.handler": "krun-sev"}, tee=SNP_CONFIG)
        res, _ = run_init(path, str(fake), devices="kvm,sev")
        assert res.returncode == 2
        assert "krun-sev: libkrun-sev.so.1 was not built with SEV support" in res.stderr

    def test_old_libkrun_falls_back(self, tmp_path, old_double_dir):
        path = krun_bundle(tmp_path, args=["sh", "-c", "echo old"], annotations={"run.oci.handler": "krun"})
        res, calls = run_init(path, old_double_dir)
        assert res.returncode == 0 and res.stdout == "old\n", res.stderr
        assert calls_named(calls, "krun_set_root")[0]["args"][1] == "/"
        path = krun_bundle(tmp_path / "sev", annotations={"run.oci.handler": "krun-sev"}, tee=SNP_CONFIG)
        res, calls = run_init(path, old_double_dir, devices="kvm,sev")
        assert res.returncode == 0, res.stderr   # no krun_has_feature: TEE support probed by symbol
        assert calls_named(calls, "krun_set_tee_config_file")

    def test_sigterm_powers_the_vm_off(self, tmp_path, double_dir):
        marker = f"{os.getpid() % 1000 + 100}.25"
        path = krun_bundle(tmp_path, args=["sleep", marker], annotations={"run.oci.handler": "krun"})
        proc, log = run_init(path, double_dir, wait=False)
        try:
            deadline = time.monotonic() + 20
            while not any(c["call"] == "(workload)" for c in double.read_calls(log)):
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
                time.sleep(0.05)
            vmm = calls_named(double.read_calls(log), "krun_start_enter")[0]["pid"]
            start = time.monotonic()
            os.kill(vmm, signal.SIGTERM)
            assert proc.wait(timeout=10) == 143          # _exit(128+SIGTERM) from ocirt's handler
            assert time.monotonic() - start < 5
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        deadline = time.monotonic() + 5
        while _sleepers(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _sleepers(marker), "the guest workload outlived the VMM"


def _sleepers(marker):
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[:2] == [b"sleep", marker.encode()]:
                    found.append(pid)
        except OSError:
            pass
    return found


def test_features(double_dir):
    code = (f"import sys, json; sys.path.insert(0, {support.REPO!r}); from ocirt import handlers; "
            "print(json.dumps(handlers.features()))")
    run = lambda env: json.loads(subprocess.run([sys.executable, "-I", "-c", code], cwd=support.REPO, env=env,
                                                capture_output=True, text=True, check=True).stdout)
    env = {k: v for k, v in os.environ.items() if k != "OCIRT_LIBKRUN_DIR"}
    assert run(env) == {"run.oci.ocirt.handlers": "krun,krun-sev,krun-tdx", "run.oci.ocirt.libkrun.variants": ""}
    found = run(dict(env, OCIRT_LIBKRUN_DIR=double_dir, LIBKRUN_DOUBLE_LOG=os.devnull))
    assert found["run.oci.ocirt.libkrun.variants"] == "krun,krun-sev,krun-tdx"


def test_pre_parsed_declarations_are_current_and_used(tmp_path):
    from ocirt.handlers import _libkrun_build
    _libkrun_build.generate(str(tmp_path))
    with open(os.path.join(support.REPO, "ocirt", "handlers", "_libkrun_ffi.py"), "rb") as f:
        committed = f.read()
    assert (tmp_path / "ocirt" / "handlers" / "_libkrun_ffi.py").read_bytes() == committed, \
        "run: python -m ocirt.handlers._libkrun_build"
    code = (f"import sys; sys.path.insert(0, {support.REPO!r}); from ocirt.handlers import libkrun; "
            "libkrun._get_ffi(); print('pycparser' in sys.modules, 'cffi.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]   # no cdef parsing on the create path
