/*
 * The native `ocirt` executable: CPython embedded and started the way a
 * runtime that is re-executed for every verb needs it.
 *
 * Compared with a "#!python3 -IS" script this saves, per verb:
 *   - the dynamic relocation of libpython.so (linked in statically, non-PIE,
 *     where the interpreter ships libpython.a);
 *   - the locale probing of a normal start (UTF-8 mode is fixed: paths and
 *     config.json are UTF-8 or bytes, as for runc);
 *   - the cyclic garbage collector: a verb lives for milliseconds and makes
 *     no cycles worth collecting, while each collection walks every tracked
 *     object, and after create's fork that walk would copy every page of the
 *     heap in parent and child alike (`events --interval`, the one verb
 *     that loops, turns it back on);
 *   - interpreter finalisation (module teardown and a last full GC): a verb
 *     holds nothing that needs it.  Files are closed by their `with` blocks,
 *     the log writes with os.write, and no verb starts threads or registers
 *     atexit handlers, so flushing stdout/stderr and _exit() is complete.
 * benchmarks/lifecycle.py measures the difference against the script launcher.
 *
 * It also starts, for the verbs that move a process into a cgroup (create,
 * run, exec), the throwaway child of ocirt.cgroups.MigrationWarmup before
 * the interpreter exists instead of after: the RCU grace period that child
 * pays then overlaps the interpreter's start-up (~2 ms less per `run` here,
 * and a plain C child is cheaper to fork than the interpreter).  Python
 * adopts it through sys._ocirt_cgroup_warmup and stops it.
 *
 * Build-time settings come from ocirt/launcher/native.py:
 *   OCIRT_MAIN_MODULE        module whose main() is the command ("ocirt.cli")
 *   OCIRT_PYTHON_EXECUTABLE  the interpreter this was linked against: becomes
 *                            sys.executable for anything that spawns Python
 *   OCIRT_PYTHON_HOME        its sys.prefix
 *   OCIRT_SEARCH_PATH        sys.path, ':'-separated
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static void die_on(PyStatus status)
{
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);
}

static void set_search_path(PyConfig *config, const char *joined)
{
    char *copy = strdup(joined), *save = NULL;
    if (copy == NULL)
        die_on(PyStatus_NoMemory());
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        wchar_t *wide = Py_DecodeLocale(dir, NULL);
        if (wide == NULL)
            die_on(PyStatus_NoMemory());
        die_on(PyWideStringList_Append(&config->module_search_paths, wide));
        PyMem_RawFree(wide);
    }
    config->module_search_paths_set = 1;
    free(copy);
}

/* ocirt.cli's global flags that take no value (tests/test_launcher.py keeps
 * this list equal to GLOBAL_FLAGS): every other flag without "=" is followed
 * by its value. */
static const char *const bool_global_flags[] = {"debug", "systemd-cgroup", "version", "v", "help", "h", NULL};
static const char *const migrating_verbs[] = {"create", "run", "exec", NULL};

static int listed(const char *word, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(word, *list) == 0)
            return 1;
    return 0;
}

/* The verb, found as ocirt.cli finds it (Go flag rules).  A wrong answer
 * only costs a warm-up that was not needed or one that is not there. */
static const char *verb_of(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (arg[0] != '-' || arg[1] == '\0')
            return arg;
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        if (strchr(name, '=') == NULL && !listed(name, bool_global_flags))
            i++;  /* the flag's value */
    }
    return NULL;
}

/* What MigrationWarmup._own_procs_file does: the cgroup.procs of the cgroup
 * this process is in, unified hierarchy first, opened and written once. */
static int own_cgroup_procs(void)
{
    static char table[16384];
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, table, sizeof table - 1);
    close(fd);
    if (n <= 0)
        return -1;
    table[n] = '\0';
    char path[8192];
    for (int pass = 0; pass < 2; pass++) {  /* 0: the "0::" line, 1: the v1 lines */
        for (char *line = table, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            size_t len = next ? (size_t)(next - line) : strlen(line);
            if (next)
                next++;
            char entry[4096];
            if (len >= sizeof entry)
                continue;
            memcpy(entry, line, len);
            entry[len] = '\0';
            char *controllers = strchr(entry, ':');
            char *own = controllers ? strchr(controllers + 1, ':') : NULL;
            if (own == NULL)
                continue;
            *controllers++ = '\0';
            *own++ = '\0';
            int unified = strcmp(entry, "0") == 0 && *controllers == '\0';
            if (unified != (pass == 0))
                continue;
            const char *roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup", NULL};
            for (int r = 0; r < (unified ? 2 : 1); r++) {
                if (unified)
                    snprintf(path, sizeof path, "%s%s/cgroup.procs", roots[r], own);
                else
                    snprintf(path, sizeof path, "/sys/fs/cgroup/%s%s/cgroup.procs", controllers, own);
                fd = open(path, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                    continue;
                if (write(fd, "0", 1) == 1)
                    return fd;
                close(fd);
            }
        }
    }
    return -1;
}

/* Fork the warm-up child; its pid, or 0.  The child moves itself into the
 * cgroup it is in every 2 ms for at most 2 s (MigrationWarmup.INTERVAL and
 * LIMIT), holds none of the caller's fds and dies with the runtime. */
static pid_t start_cgroup_warmup(void)
{
    pid_t runtime = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid > 0 ? pid : 0;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != runtime)
        _exit(0);
    if (close_range(0, ~0U, 0) != 0)
        for (int fd = 0; fd < 1024; fd++)
            close(fd);
    int fd = own_cgroup_procs();
    if (fd >= 0) {
        struct timespec interval = {0, 2 * 1000 * 1000};
        for (int i = 0; i < 1000; i++) {
            nanosleep(&interval, NULL);
            if (write(fd, "0", 1) != 1)
                break;
        }
    }
    _exit(0);
}

/* sys.exit() semantics for main()'s return value. */
static int exit_code_of(PyObject *result)
{
    if (result == Py_None)
        return 0;
    if (PyLong_Check(result)) {
        long code = PyLong_AsLong(result);
        if (code == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        return (int)code;
    }
    PyObject_Print(result, stderr, Py_PRINT_RAW);
    fputc('\n', stderr);
    return 1;
}

/* As the interpreter does at exit: an unflushable stdout turns success into 120. */
static int flush_std_streams(int code)
{
    const char *names[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        PyObject *stream = PySys_GetObject(names[i]);
        if (stream == NULL || stream == Py_None)
            continue;
        PyObject *done = PyObject_CallMethod(stream, "flush", NULL);
        if (done == NULL) {
            PyErr_Clear();
            if (code == 0)
                code = 120;
        }
        Py_XDECREF(done);
    }
    return code;
}

int main(int argc, char **argv)
{
    const char *verb = verb_of(argc, argv);
    pid_t warmup = verb && listed(verb, migrating_verbs) ? start_cgroup_warmup() : 0;

    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;
    die_on(Py_PreInitialize(&preconfig));

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.install_signal_handlers = 1;   /* as python3: SIGINT -> KeyboardInterrupt, SIGPIPE ignored */
    config.pathconfig_warnings = 0;
    die_on(PyConfig_SetBytesArgv(&config, argc, argv));
    die_on(PyConfig_SetBytesString(&config, &config.executable, OCIRT_PYTHON_EXECUTABLE));
    die_on(PyConfig_SetBytesString(&config, &config.home, OCIRT_PYTHON_HOME));
    set_search_path(&config, OCIRT_SEARCH_PATH);
    die_on(Py_InitializeFromConfig(&config));
    PyConfig_Clear(&config);
    PyGC_Disable();
    if (warmup > 0) {
        PyObject *pid = PyLong_FromLong(warmup);
        if (pid == NULL || PySys_SetObject("_ocirt_cgroup_warmup", pid) < 0)
            PyErr_Clear();
        Py_XDECREF(pid);
    }

    int code = 1;
    PyObject *module = PyImport_ImportModule(OCIRT_MAIN_MODULE);
    PyObject *result = module ? PyObject_CallMethod(module, "main", NULL) : NULL;
    if (result == NULL)
        PyErr_Print();   /* prints the traceback; a SystemExit exits through Py_Exit */
    else
        code = exit_code_of(result);
    Py_XDECREF(result);
    Py_XDECREF(module);
    _exit(flush_std_streams(code));
}
