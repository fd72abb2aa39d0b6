/*
 * TEST DOUBLE of the libkrun C ABI -- NOT libkrun, boots NO virtual machine.
 *
 * Built by the krun tests (tests/krun/double.py) with gcc into a temporary
 * directory as libkrun.so.1 / libkrun-sev.so.1 / libkrun-tdx.so.1 and loaded
 * by ocirt through OCIRT_LIBKRUN_DIR.  It exists because libkrun is not
 * packaged for the test machine.
 *
 * What it does:
 *  - records every call with its arguments as one JSON line in a log file
 *    ($LIBKRUN_DOUBLE_LOG, else calls.log next to this library), opened when
 *    the library is loaded so it still works after pivot_root;
 *  - keeps the context state libkrun would keep (returning libkrun's
 *    negative-errno codes for unknown contexts, NULL arrays, TEE builds
 *    without a TEE config file ...);
 *  - at krun_start_enter, instead of booting a VM: for a virtiofs root, reads
 *    <root>/.krun_config.json as libkrun's guest init does (process.args,
 *    process.env, process.cwd), merges the krun_set_env entries, applies the
 *    krun_set_rlimits entries, and runs the workload in a child process while
 *    this process (the "VMM") waits and exits with the workload's status,
 *    never returning -- like libkrun.  Guest-init exit codes: 125 setup
 *    failed, 126 cannot exec, 127 not found.  For a TEE build it only checks
 *    that the TEE config file and root disk exist, says on stderr that the
 *    TEE boot is not simulated, and exits 0.
 *
 * Build flags: -DDOUBLE_VARIANT=0 (libkrun), 1 (libkrun-sev), 2 (libkrun-tdx);
 * -DDOUBLE_OLD_API leaves out krun_has_feature and krun_add_virtiofs2 (an old
 * libkrun: ocirt must fall back to krun_set_root and symbol probing).
 * Failure injection: $LIBKRUN_DOUBLE_FAIL=<function>:<errno> makes that
 * function return -errno.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef DOUBLE_VARIANT
#define DOUBLE_VARIANT 0
#endif
#define TEE_BUILD (DOUBLE_VARIANT != 0)
#define MAX_CTX 8
#define MAX_ARGS 4096
#define LOG_FD_MIN 900

extern char **environ;

struct ctx {
    bool used;
    char *root;          /* virtiofs "/dev/root" path or krun_set_root */
    char *root_disk;
    char *tee_config;
    char **env;          /* krun_set_env; NULL: never called */
    char **rlimits;
};

static struct ctx ctxs[MAX_CTX];
static int log_fd = -1;

/* ---- logging: one JSON object per call ------------------------------------ */
static char logbuf[65536];
static size_t loglen;

static void out(const char *s, size_t n)
{
    if (loglen + n < sizeof(logbuf)) {
        memcpy(logbuf + loglen, s, n);
        loglen += n;
    }
}
static void outs(const char *s) { out(s, strlen(s)); }
static void outf(const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    out(tmp, n > 0 ? (size_t)n : 0);
}
static void out_str(const char *s)
{
    if (!s) { outs("null"); return; }
    outs("\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; out(e, 2); }
        else if (c < 0x20) outf("\\u%04x", c);
        else out((const char *)&c, 1);
    }
    outs("\"");
}
static void out_strv(const char *const *v)
{
    if (!v) { outs("null"); return; }
    outs("[");
    for (int i = 0; v[i] && i < MAX_ARGS; i++) {
        if (i) outs(",");
        out_str(v[i]);
    }
    outs("]");
}
static void out_root_id(void)
{
    struct stat st;
    if (stat("/", &st) == 0) outf(",\"root_id\":\"%lu:%lu\"", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
}
static void begin(const char *fn)
{
    loglen = 0;
    outs("{\"call\":");
    out_str(fn);
    outf(",\"pid\":%d,\"variant\":%d,\"args\":[", (int)getpid(), DOUBLE_VARIANT);
}
static void end(int32_t ret)
{
    outf("],\"ret\":%d", ret);
}
static void flush_line(void)
{
    outs("}\n");
    if (log_fd >= 0 && write(log_fd, logbuf, loglen) < 0) { /* nothing to do */ }
}

static int32_t injected(const char *fn)
{
    const char *spec = getenv("LIBKRUN_DOUBLE_FAIL");
    size_t n = strlen(fn);
    if (spec && strncmp(spec, fn, n) == 0 && spec[n] == ':')
        return -atoi(spec + n + 1);
    return 0;
}

__attribute__((constructor)) static void open_log(void)
{
    char path[4096];
    const char *env = getenv("LIBKRUN_DOUBLE_LOG");
    Dl_info info;
    if (env) {
        snprintf(path, sizeof(path), "%s", env);
    } else if (dladdr((void *)open_log, &info) && info.dli_fname) {
        snprintf(path, sizeof(path), "%s", info.dli_fname);
        char *slash = strrchr(path, '/');
        snprintf(slash ? slash + 1 : path, sizeof(path) - (slash ? (size_t)(slash + 1 - path) : 0), "calls.log");
    } else {
        return;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    /* Out of the way of the fds the runtime dup2s onto (stdio, preserved fds). */
    log_fd = fcntl(fd, F_DUPFD_CLOEXEC, LOG_FD_MIN);
    close(fd);
    begin("(loaded)");
    end(0);
    flush_line();
}

static struct ctx *get(uint32_t id)
{
    return id < MAX_CTX && ctxs[id].used ? &ctxs[id] : NULL;
}

static char **copy_strv(const char *const *v)
{
    int n = 0;
    while (v[n] && n < MAX_ARGS) n++;
    char **c = calloc(n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) c[i] = strdup(v[i]);
    return c;
}

/* ---- the API -------------------------------------------------------------- */
#define ENTER(fn) begin(fn); int32_t ret = injected(fn)
#define LEAVE() do { end(ret); flush_line(); return ret; } while (0)

int32_t krun_set_log_level(uint32_t level)
{
    ENTER("krun_set_log_level");
    outf("%u", level);
    LEAVE();
}

int32_t krun_create_ctx(void)
{
    ENTER("krun_create_ctx");
    if (ret == 0) {
        ret = -ENOMEM;
        for (int i = 0; i < MAX_CTX; i++)
            if (!ctxs[i].used) { memset(&ctxs[i], 0, sizeof(ctxs[i])); ctxs[i].used = true; ret = i; break; }
    }
    end(ret);
    out_root_id();   /* tests check the context is made before pivot_root */
    flush_line();
    return ret;
}

int32_t krun_free_ctx(uint32_t id)
{
    ENTER("krun_free_ctx");
    outf("%u", id);
    if (!ret) { struct ctx *c = get(id); if (c) c->used = false; else ret = -ENOENT; }
    LEAVE();
}

#ifndef DOUBLE_OLD_API
int32_t krun_has_feature(uint64_t feature)
{
    ENTER("krun_has_feature");
    outf("%lu", (unsigned long)feature);
    if (!ret) {
        switch (feature) {
        case 1: ret = TEE_BUILD; break;                           /* BLK */
        case 6: ret = TEE_BUILD; break;                           /* TEE */
        case 7: ret = DOUBLE_VARIANT == 1; break;                 /* AMD_SEV */
        case 8: ret = DOUBLE_VARIANT == 2; break;                 /* INTEL_TDX */
        case 11: ret = !TEE_BUILD; break;                         /* INIT_BLOB */
        default: ret = feature <= 11 ? 0 : -EINVAL;
        }
    }
    LEAVE();
}
#endif

int32_t krun_get_max_vcpus(void)
{
    ENTER("krun_get_max_vcpus");
    if (!ret) ret = 64;
    LEAVE();
}

int32_t krun_set_vm_config(uint32_t id, uint8_t cpus, uint32_t ram_mib)
{
    ENTER("krun_set_vm_config");
    outf("%u,%u,%u", id, cpus, ram_mib);
    if (!ret && !get(id)) ret = -ENOENT;
    if (!ret && (cpus == 0 || ram_mib == 0)) ret = -EINVAL;
    LEAVE();
}

int32_t krun_get_shutdown_eventfd(uint32_t id)
{
    ENTER("krun_get_shutdown_eventfd");
    outf("%u", id);
    if (!ret) ret = -EINVAL;   /* as on Linux: no shutdown eventfd */
    LEAVE();
}

int32_t krun_set_env(uint32_t id, const char *const envp[])
{
    ENTER("krun_set_env");
    outf("%u,", id);
    out_strv(envp);
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
    if (!ret) c->env = envp ? copy_strv(envp) : copy_strv((const char *const *)environ);  /* NULL: host env, as libkrun */
    LEAVE();
}

int32_t krun_set_rlimits(uint32_t id, const char *const rlimits[])
{
    ENTER("krun_set_rlimits");
    outf("%u,", id);
    out_strv(rlimits);
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
    if (!ret && !rlimits) ret = -EINVAL;
    if (!ret) c->rlimits = copy_strv(rlimits);
    LEAVE();
}

int32_t krun_set_exec(uint32_t id, const char *path, const char *const argv[], const char *const envp[])
{
    ENTER("krun_set_exec");
    outf("%u,", id);
    out_str(path); outs(","); out_strv(argv); outs(","); out_strv(envp);
    if (!ret && !get(id)) ret = -ENOENT;
    LEAVE();
}

int32_t krun_set_workdir(uint32_t id, const char *path)
{
    ENTER("krun_set_workdir");
    outf("%u,", id);
    out_str(path);
    if (!ret && !get(id)) ret = -ENOENT;
    LEAVE();
}

#if !TEE_BUILD
int32_t krun_set_root(uint32_t id, const char *path)
{
    ENTER("krun_set_root");
    outf("%u,", id);
    out_str(path);
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
    if (!ret) c->root = strdup(path);
    LEAVE();
}

#ifndef DOUBLE_OLD_API
int32_t krun_add_virtiofs2(uint32_t id, const char *tag, const char *path, uint64_t shm_size)
{
    ENTER("krun_add_virtiofs2");
    outf("%u,", id);
    out_str(tag); outs(","); out_str(path);
    outf(",%lu", (unsigned long)shm_size);
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
    if (!ret && strcmp(tag, "/dev/root") == 0) c->root = strdup(path);
    LEAVE();
}
#endif

int32_t krun_set_nested_virt(uint32_t id, bool enabled)
{
    ENTER("krun_set_nested_virt");
    outf("%u,%s", id, enabled ? "true" : "false");
    if (!ret && !get(id)) ret = -ENOENT;
    LEAVE();
}

int32_t krun_check_nested_virt(void)
{
    ENTER("krun_check_nested_virt");
    LEAVE();
}
#else
int32_t krun_set_root_disk(uint32_t id, const char *path)
{
    ENTER("krun_set_root_disk");
    outf("%u,", id);
    out_str(path);
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
    if (!ret) c->root_disk = strdup(path);
    LEAVE();
}

int32_t krun_add_disk(uint32_t id, const char *block_id, const char *path, bool read_only)
{
    ENTER("krun_add_disk");
    outf("%u,", id);
    out_str(block_id); outs(","); out_str(path);
    outf(",%s", read_only ? "true" : "false");
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
    if (!ret && !c->root_disk) c->root_disk = strdup(path);
    LEAVE();
}

int32_t krun_set_tee_config_file(uint32_t id, const char *path)
{
    ENTER("krun_set_tee_config_file");
    outf("%u,", id);
    out_str(path);
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
    if (!ret) c->tee_config = strdup(path);
    LEAVE();
}
#endif

/* ---- a very small JSON reader, enough for .krun_config.json --------------- */
static const char *ws(const char *p) { while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++; return p; }

static void put_utf8(char **o, unsigned cp)
{
    char *q = *o;
    if (cp < 0x80) *q++ = (char)cp;
    else if (cp < 0x800) { *q++ = (char)(0xC0 | cp >> 6); *q++ = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { *q++ = (char)(0xE0 | cp >> 12); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
    else { *q++ = (char)(0xF0 | cp >> 18); *q++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
    *o = q;
}

/* Parses a string at p; returns the position after it, or NULL.  *out (may be NULL) gets a malloc'd copy. */
static const char *str(const char *p, char **out)
{
    if (*p != '"') return NULL;
    char *buf = malloc(strlen(p) + 1), *o = buf;   /* decoding never grows a string */
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') { *o++ = *p; continue; }
        p++;
        switch (*p) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned cp;
            if (sscanf(p + 1, "%4x", &cp) != 1) { free(buf); return NULL; }
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo;
                if (sscanf(p + 3, "%4x", &lo) == 1) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); p += 6; }
            }
            put_utf8(&o, cp);
            break;
        }
        case '\0': free(buf); return NULL;
        default: *o++ = *p;
        }
    }
    if (*p != '"') { free(buf); return NULL; }
    *o = 0;
    if (out) *out = buf; else free(buf);
    return p + 1;
}

static const char *skip(const char *p)
{
    p = ws(p);
    if (*p == '"') return str(p, NULL);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') { p = str(ws(p), NULL); if (!p) return NULL; p = ws(p); if (*p++ != ':') return NULL; }
            p = skip(p);
            if (!p) return NULL;
            p = ws(p);
            if (*p == ',') { p++; continue; }
            return *p == close ? p + 1 : NULL;
        }
    }
    while (*p && !strchr(",}] \n\r\t", *p)) p++;
    return p;
}

/* The value of "key" in the object at p, or NULL. */
static const char *member(const char *p, const char *key)
{
    p = ws(p);
    if (!p || *p != '{') return NULL;
    p = ws(p + 1);
    while (*p == '"') {
        char *k;
        p = str(p, &k);
        if (!p) return NULL;
        p = ws(p);
        if (*p++ != ':') { free(k); return NULL; }
        p = ws(p);
        int hit = strcmp(k, key) == 0;
        free(k);
        if (hit) return p;
        p = skip(p);
        if (!p) return NULL;
        p = ws(p);
        if (*p == ',') p = ws(p + 1);
    }
    return NULL;
}

static char **strarray(const char *p)
{
    if (!p || *(p = ws(p)) != '[') return NULL;
    char **v = calloc(MAX_ARGS + 1, sizeof(char *));
    int n = 0;
    p = ws(p + 1);
    while (*p == '"' && n < MAX_ARGS) {
        p = str(p, &v[n++]);
        if (!p) return NULL;
        p = ws(p);
        if (*p == ',') p = ws(p + 1);
    }
    return v;
}

/* ---- start ---------------------------------------------------------------- */
static void guest_fail(int code, const char *what)
{
    fprintf(stderr, "libkrun test double: guest init: %s\n", what);
    _exit(code);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* config env, then the krun_set_env entries win, except HOME and TERM (libkrun §4.6) */
static char **merge_env(char **config_env, char **cmdline_env)
{
    char **env = calloc(2 * MAX_ARGS + 1, sizeof(char *));
    int n = 0;
    for (int i = 0; config_env && config_env[i]; i++) env[n++] = config_env[i];
    for (int i = 0; cmdline_env && cmdline_env[i]; i++) {
        size_t klen = strcspn(cmdline_env[i], "=");
        int j;
        for (j = 0; j < n; j++)
            if (strncmp(env[j], cmdline_env[i], klen) == 0 && env[j][klen] == '=') break;
        bool config_wins = (klen == 4 && (!strncmp(cmdline_env[i], "HOME", 4) || !strncmp(cmdline_env[i], "TERM", 4)));
        if (j == n) env[n++] = cmdline_env[i];
        else if (!config_wins) env[j] = cmdline_env[i];
    }
    return env;
}

__attribute__((unused)) static void run_workload(struct ctx *c)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/.krun_config.json", strcmp(c->root, "/") ? c->root : "");
    const char *doc = read_file(path);
    if (!doc) guest_fail(125, "cannot read /.krun_config.json");
    const char *process = member(doc, "process");
    char **args = process ? strarray(member(process, "args")) : NULL;
    char **cfg_env = process ? strarray(member(process, "env")) : NULL;
    char *cwd = NULL;
    const char *cwdp = process ? member(process, "cwd") : NULL;
    if (cwdp) str(cwdp, &cwd);
    if (!args || !args[0]) guest_fail(125, "no process.args in /.krun_config.json");
    char **env = merge_env(cfg_env, c->env);

    begin("(workload)");
    out_strv((const char *const *)args); outs(","); out_strv((const char *const *)env); outs(",");
    out_str(cwd ? cwd : "/");
    outs(",");
    out_strv((const char *const *)c->rlimits);
    end(0);
    flush_line();

    for (int i = 0; c->rlimits && c->rlimits[i]; i++) {
        int id; unsigned long long cur, max;
        if (sscanf(c->rlimits[i], "%d=%llu:%llu", &id, &cur, &max) != 3) guest_fail(125, "bad KRUN_RLIMITS entry");
        struct rlimit rl = { cur, max };
        if (setrlimit(id, &rl) < 0) guest_fail(125, "setrlimit failed");
    }
    if (cwd && chdir(cwd) < 0) guest_fail(125, "cannot chdir to process.cwd");

    pid_t vmm = getpid();
    pid_t pid = fork();
    if (pid < 0) guest_fail(125, "fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* the VM is gone when the VMM is */
        if (getppid() != vmm) _exit(137);   /* ... even if it went before the line above */
        environ = env;
        execvp(args[0], args);
        int code = errno == ENOENT ? 127 : 126;
        fprintf(stderr, "libkrun test double: guest init: exec %s: %s\n", args[0], strerror(errno));
        _exit(code);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) _exit(125);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int32_t krun_start_enter(uint32_t id)
{
    ENTER("krun_start_enter");
    outf("%u", id);
    struct ctx *c = get(id);
    if (!ret && !c) ret = -ENOENT;
#if TEE_BUILD
    if (!ret && !c->tee_config) ret = -EINVAL;   /* TEE builds require a TEE config file */
    if (!ret && (access(c->tee_config, R_OK) < 0 || !c->root_disk || access(c->root_disk, R_OK) < 0)) ret = -ENOENT;
#else
    if (!ret && !c->root) ret = -EINVAL;
#endif
    end(ret);
    out_root_id();
    flush_line();
    if (ret) return ret;
    c->used = false;   /* consumed, as libkrun does */
#if TEE_BUILD
    fprintf(stderr, "libkrun test double: TEE boot of %s with %s is not simulated\n", c->root_disk, c->tee_config);
    _exit(0);
#else
    run_workload(c);
    return -EINVAL;
#endif
}
