/* Changing another thread's run queue: one compare-and-set, done while the
 * owner thread is outside stackless_compat's Python code.
 *
 * Only the owner thread changes its ring, and the Python policy reads and
 * writes it in steps that span several calls (schedule() reads the next
 * tasklet, then makes it head), so another thread may change it only while
 * the owner is in none of those steps.  Python code cannot make that check
 * and the change atomic: the interpreter may hand the GIL to the owner after
 * any call.  This function does both under the GIL without running any
 * Python code: it looks at the owner's current frames (the innermost frame
 * of this package must be the bottom ``body`` frame of a tasklet's greenlet,
 * with the tasklet's own code above it, or there must be none), then checks
 * the expected values and makes the assignments.  The caller computes both
 * lists; nothing here knows what a ring is (the policy stays in Python).
 *
 * What keeps Python code out: the collector is paused (frame objects may be
 * allocated while walking), the attributes are member descriptors (C), and
 * the caller holds a reference to every object whose last reference an
 * assignment could drop.  A C hand-over of the owner that was in progress is
 * complete by now: it runs no Python code and releases no GIL midway.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* 1: the owner's frames are outside the package (or it runs a tasklet's own
 * code above ``body``); 0: it is inside; -1: error */
static int
owner_is_outside(PyThreadState *ts, PyObject *prefix, PyObject *bottom)
{
    PyFrameObject *frame = PyThreadState_GetFrame(ts);
    int innermost = 1, result = 1;

    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyFrameObject *back;
        Py_ssize_t ours = PyUnicode_Tailmatch(code->co_filename, prefix, 0,
                                              PY_SSIZE_T_MAX, -1);
        int is_bottom = (PyObject *)code == bottom;

        Py_DECREF(code);
        if (ours < 0) {
            Py_DECREF(frame);
            return -1;
        }
        if (ours) {
            /* the bottom frame may only be calling the tasklet's function */
            result = is_bottom && !innermost;
            Py_DECREF(frame);
            return result;
        }
        innermost = 0;
        back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return result;
}

static int
matches(PyObject *actual, PyObject *expected)
{
    if (actual == expected)
        return 1;
    /* counters: exact ints compare by value without running Python code */
    if (PyLong_CheckExact(actual) && PyLong_CheckExact(expected))
        return PyObject_RichCompareBool(actual, expected, Py_EQ);
    return 0;
}

/* apply(thread_id, prefix, bottom_code, checks, sets) -> True if applied,
 * False if the owner is busy in the package or a check failed; None if no
 * such thread.  checks and sets: tuples of (object, attribute name, value). */
static PyObject *
apply_when_outside(PyObject *module, PyObject *args)
{
    unsigned long thread_id;
    PyObject *prefix, *bottom, *checks, *sets;
    PyThreadState *ts;
    Py_ssize_t i;
    int collecting, outside;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "kUOO!O!:apply_when_outside", &thread_id, &prefix, &bottom,
                          &PyTuple_Type, &checks, &PyTuple_Type, &sets))
        return NULL;
    for (i = 0; i < PyTuple_GET_SIZE(checks) + PyTuple_GET_SIZE(sets); i++) {
        PyObject *item = i < PyTuple_GET_SIZE(checks) ? PyTuple_GET_ITEM(checks, i)
            : PyTuple_GET_ITEM(sets, i - PyTuple_GET_SIZE(checks));
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3
                || !PyUnicode_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError, "checks and sets hold (object, name, value)");
            return NULL;
        }
    }
    collecting = PyGC_Disable();
    for (ts = PyInterpreterState_ThreadHead(PyInterpreterState_Get()); ts != NULL;
            ts = PyThreadState_Next(ts))
        if (ts->thread_id == thread_id)
            break;
    if (ts == NULL) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    outside = owner_is_outside(ts, prefix, bottom);
    if (outside < 0)
        goto done;
    if (!outside) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    for (i = 0; i < PyTuple_GET_SIZE(checks); i++) {
        PyObject *item = PyTuple_GET_ITEM(checks, i);
        PyObject *actual = PyObject_GenericGetAttr(PyTuple_GET_ITEM(item, 0),
                                                   PyTuple_GET_ITEM(item, 1));
        int ok;
        if (actual == NULL)
            goto done;
        ok = matches(actual, PyTuple_GET_ITEM(item, 2));
        Py_DECREF(actual);
        if (ok < 0)
            goto done;
        if (!ok) {
            result = Py_NewRef(Py_False);
            goto done;
        }
    }
    for (i = 0; i < PyTuple_GET_SIZE(sets); i++) {
        PyObject *item = PyTuple_GET_ITEM(sets, i);
        if (PyObject_GenericSetAttr(PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1),
                                    PyTuple_GET_ITEM(item, 2)) < 0)
            goto done;  /* object members take any value and counters ints: not reached */
    }
    result = Py_NewRef(Py_True);
done:
    if (collecting)
        PyGC_Enable();
    return result;
}

static PyMethodDef methods[] = {
    {"apply_when_outside", apply_when_outside, METH_VARARGS,
     "apply_when_outside(thread_id, prefix, bottom_code, checks, sets): make the sets if\n"
     "the thread's frames are outside the package and every check holds (see the file)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "stackless_compat._remote",
    "Changing another thread's run queue while that thread is outside the package.",
    -1, methods
};

PyMODINIT_FUNC
PyInit__remote(void)
{
    return PyModule_Create(&module_def);
}
