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
 * Build-time settings come from ocirt/launcher/native.py:
 *   OCIRT_MAIN_MODULE        module whose main() is the command ("ocirt.cli")
 *   OCIRT_PYTHON_EXECUTABLE  the interpreter this was linked against: becomes
 *                            sys.executable for anything that spawns Python
 *   OCIRT_PYTHON_HOME        its sys.prefix
 *   OCIRT_SEARCH_PATH        sys.path, ':'-separated
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
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
