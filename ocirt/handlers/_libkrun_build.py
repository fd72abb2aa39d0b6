"""cffi declarations of the libkrun C API, for ABI mode (no libkrun headers needed).

``python -m ocirt.handlers._libkrun_build`` writes ``_libkrun_ffi.py``: the
same declarations pre-parsed by cffi's "out-of-line ABI mode", so loading
them costs under a millisecond instead of a pycparser run on every krun
create.  The generated file is committed; tests/test_krun.py checks it is
current.  Only libc's dlopen/dlerror and the libkrun functions ocirt calls
are declared (reference: libkrun-and-krun-handler.md §3).
"""
import os

from cffi import FFI

CDEF = """
/* libc: ocirt calls dlopen itself (see libkrun._dlopen) */
void *dlopen(const char *filename, int flags);
char *dlerror(void);
int32_t krun_set_log_level(uint32_t level);
int32_t krun_create_ctx(void);
int32_t krun_free_ctx(uint32_t ctx_id);
int32_t krun_has_feature(uint64_t feature);
int32_t krun_get_max_vcpus(void);
int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib);
int32_t krun_set_nested_virt(uint32_t ctx_id, bool enabled);
int32_t krun_check_nested_virt(void);
int32_t krun_set_root(uint32_t ctx_id, const char *root_path);
int32_t krun_add_virtiofs2(uint32_t ctx_id, const char *c_tag, const char *c_path, uint64_t shm_size);
int32_t krun_set_root_disk(uint32_t ctx_id, const char *disk_path);
int32_t krun_add_disk(uint32_t ctx_id, const char *block_id, const char *disk_path, bool read_only);
int32_t krun_set_tee_config_file(uint32_t ctx_id, const char *filepath);
int32_t krun_set_env(uint32_t ctx_id, const char *const envp[]);
int32_t krun_set_rlimits(uint32_t ctx_id, const char *const rlimits[]);
int32_t krun_start_enter(uint32_t ctx_id);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("ocirt.handlers._libkrun_ffi", None)


def generate(top):
    """Write ocirt/handlers/_libkrun_ffi.py under ``top`` (a checkout or a temp dir)."""
    return ffibuilder.compile(tmpdir=top)


if __name__ == "__main__":
    print(generate(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
