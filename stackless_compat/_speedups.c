/* Optional C fast path for channel.send() and channel.receive().
 *
 * The pure-Python hand-over (_channel.py: channel._action) is the reference;
 * this file repeats only its common single-thread cases and calls
 * channel._action for everything else, before changing anything: channel
 * callbacks, threads sharing channels, switch traps, schedule_all, partners
 * in other threads, blocking the last runnable tasklet, block_trap, a closing
 * channel, tasklets that never ran, and any scheduler hook (posted tasklets,
 * switch hooks, the schedule callback).  Measured on the channel ping-pong:
 * 2.1x a raw greenlet.switch round trip, against 5.4x in Python
 * (bench/channels.py).
 *
 * The objects are the Python ones: their __slots__ are read and written at
 * the offsets the member descriptors give (setup() looks them up), so
 * subclasses keep working.  Set STACKLESS_COMPAT_PURE=1 to run without it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* slot offsets */
static Py_ssize_t T_NEXT, T_PREV, T_SCHED, T_GREENLET, T_TEMPVAL, T_CHANNEL, T_BLOCK_TRAP;
static Py_ssize_t C_NEXT, C_PREV, C_BALANCE, C_PREFERENCE, C_SCHEDULE_ALL, C_CLOSING;
static Py_ssize_t S_CURRENT, S_RUNCOUNT, S_POSTED, S_SWITCH_HOOKS, S_SWITCH_TRAP;
static Py_ssize_t S_WATCHDOGS, S_MAIN, S_THREADBLOCK;
static Py_ssize_t H_SCHEDULE, H_CHANNEL, SH_LOCK;

/* the Python objects the fast path consults (set up once) */
static PyObject *local_obj, *hooks_obj, *shared_obj, *bomb_type, *start_type, *fallback;
static PyObject *greenlet_exit, *collected_exc, *switch_descr;
static PyObject *str_scheduler, *str_switch, *str_raise, *str_greenlet, *str_value;

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

static void
set_slot(PyObject *o, Py_ssize_t off, PyObject *v)
{
    PyObject *old = SLOT(o, off);
    Py_XINCREF(v);
    SLOT(o, off) = v;
    Py_XDECREF(old);
}

/* ``o``'s int slot plus ``delta`` as a new object, made before any link
 * changes so that a failure leaves every structure as it was */
static PyObject *
long_plus(PyObject *o, Py_ssize_t off, long delta)
{
    long value = PyLong_AsLong(SLOT(o, off));
    if (value == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromLong(value + delta);
}

/* store the new reference ``v`` (stolen) in the slot */
static void
put_slot(PyObject *o, Py_ssize_t off, PyObject *v)
{
    PyObject *old = SLOT(o, off);
    SLOT(o, off) = v;
    Py_XDECREF(old);
}

static int
truth(PyObject *o)
{
    return o != NULL && o != Py_None && o != Py_False && PyObject_IsTrue(o) > 0;
}

/* The chain link of a tasklet or, at the ends of a channel's chain, of the channel. */
#define NEXT_OF(o, ch) ((o) == (ch) ? C_NEXT : T_NEXT)
#define PREV_OF(o, ch) ((o) == (ch) ? C_PREV : T_PREV)

/* Scheduler.switch's plain case: ``next`` is the head; hand it its tempval.
 * Holds no reference to either tasklet while suspended (see _scheduler.py). */
static inline __attribute__((always_inline)) PyObject *
switch_to(PyObject *next)
{
    PyObject *value = SLOT(next, T_TEMPVAL), *target = SLOT(next, T_GREENLET), *result;
    Py_INCREF(value);
    Py_INCREF(target);
    set_slot(next, T_TEMPVAL, Py_None);
    {
        /* greenlet.switch called through its method descriptor: fewer C frames
           on the stack greenlet saves for every suspended tasklet */
        PyObject *call_args[2] = {target, value};
        result = PyObject_Vectorcall(switch_descr, call_args, 2, NULL);
    }
    Py_DECREF(target);
    Py_DECREF(value);
    /* only the root greenlet receives _Start requests: start that greenlet here */
    while (result != NULL && (PyObject *)Py_TYPE(result) == start_type) {
        PyObject *started = PyObject_GetAttr(result, str_greenlet);
        PyObject *initial = PyObject_GetAttr(result, str_value);
        Py_DECREF(result);
        result = NULL;
        if (started != NULL && initial != NULL)
            result = PyObject_CallMethodOneArg(started, str_switch, initial);
        Py_XDECREF(started);
        Py_XDECREF(initial);
    }
    if (result == NULL) {
        if (PyErr_ExceptionMatches(greenlet_exit)) {
            PyErr_Clear();
            PyErr_SetNone(collected_exc);
        }
        return NULL;
    }
    if ((PyObject *)Py_TYPE(result) == bomb_type) {
        PyObject *raised = PyObject_CallMethodNoArgs(result, str_raise);
        Py_DECREF(result);
        Py_XDECREF(raised);
        return NULL;
    }
    return result;
}

static PyObject *
explode_or_return(PyObject *value)
{
    if ((PyObject *)Py_TYPE(value) == bomb_type) {
        PyObject *raised = PyObject_CallMethodNoArgs(value, str_raise);
        Py_DECREF(value);
        Py_XDECREF(raised);
        return NULL;
    }
    return value;
}

/* 1: handled (*result set, maybe NULL with an error); 0: not a fast case.
 *
 * Everything that can fail or run Python code (new ints, releasing a
 * tempval whose __del__ may use this channel) happens before the first link
 * changes or after the switch, never in between. */
static inline __attribute__((always_inline)) int
fast_action(PyObject *ch, int direction, PyObject *value, PyObject **result)
{
    PyObject *sched, *source, *target, *after, *next, *last, *before, *got, *kept;
    PyObject *new_balance = NULL, *new_runcount = NULL;
    long balance;

    if (SLOT(hooks_obj, H_CHANNEL) != Py_None || SLOT(shared_obj, SH_LOCK) != Py_None
            || SLOT(hooks_obj, H_SCHEDULE) != Py_None)
        return 0;
    sched = PyObject_GetAttr(local_obj, str_scheduler);
    if (sched == NULL) {
        PyErr_Clear();
        return 0;  /* the thread's first stackless call: Python creates its scheduler */
    }
    if (truth(SLOT(sched, S_SWITCH_TRAP)) || truth(SLOT(sched, S_SWITCH_HOOKS))
            || truth(SLOT(sched, S_POSTED)))
        goto not_fast;
    source = SLOT(sched, S_CURRENT);
    balance = PyLong_AsLong(SLOT(ch, C_BALANCE));
    if (balance == -1 && PyErr_Occurred())
        goto not_fast_error;

    if (direction > 0 ? balance < 0 : balance > 0) {
        /* a partner waits: take the first one */
        int prefer = PyLong_AsLong(SLOT(ch, C_PREFERENCE)) == -direction;
        target = SLOT(ch, C_NEXT);
        if (SLOT(target, T_SCHED) != sched || SLOT(target, T_GREENLET) == Py_None
                || truth(SLOT(ch, C_SCHEDULE_ALL)))
            goto not_fast;
        new_balance = long_plus(ch, C_BALANCE, direction);
        new_runcount = long_plus(sched, S_RUNCOUNT, 1);
        if (new_balance == NULL || new_runcount == NULL)
            goto not_fast_error;
        Py_INCREF(target);
        after = SLOT(target, T_NEXT);
        Py_INCREF(after);
        set_slot(ch, C_NEXT, after);
        set_slot(after, PREV_OF(after, ch), ch);
        Py_DECREF(after);
        set_slot(target, T_NEXT, Py_None);
        set_slot(target, T_PREV, Py_None);
        set_slot(target, T_CHANNEL, Py_None);
        put_slot(ch, C_BALANCE, new_balance);
        put_slot(sched, S_RUNCOUNT, new_runcount);
        /* the receiver gets the value, the sender None */
        got = direction > 0 ? Py_None : SLOT(target, T_TEMPVAL);
        Py_INCREF(got);
        kept = SLOT(target, T_TEMPVAL);  /* released once the links are whole */
        Py_INCREF(kept);
        set_slot(target, T_TEMPVAL, direction > 0 ? value : Py_None);
        if (prefer) {
            /* the partner runs now, right after the caller, who ends up last */
            after = SLOT(source, T_NEXT);
            Py_INCREF(after);
            set_slot(source, T_NEXT, target);
            set_slot(target, T_PREV, source);
            set_slot(target, T_NEXT, after);
            set_slot(after, T_PREV, target);
            Py_DECREF(after);
            set_slot(sched, S_CURRENT, target);
            {
                PyObject *old = SLOT(source, T_TEMPVAL);
                SLOT(source, T_TEMPVAL) = got;  /* the reference to got moves in */
                Py_DECREF(sched);
                *result = switch_to(target);
                Py_DECREF(target);
                Py_XDECREF(old);
            }
            Py_DECREF(kept);
            return 1;
        }
        /* the partner goes to the end of the run queue; the caller goes on */
        last = SLOT(source, T_PREV);
        Py_INCREF(last);
        set_slot(last, T_NEXT, target);
        set_slot(target, T_PREV, last);
        set_slot(target, T_NEXT, source);
        set_slot(source, T_PREV, target);
        Py_DECREF(last);
        Py_DECREF(target);
        Py_DECREF(sched);
        Py_DECREF(kept);
        *result = explode_or_return(got);
        return 1;
    }

    /* nobody waits: block, unless the slow path must decide */
    if (truth(SLOT(source, T_BLOCK_TRAP)) || truth(SLOT(ch, C_CLOSING)))
        goto not_fast;
    new_balance = long_plus(ch, C_BALANCE, direction);
    if (new_balance == NULL)
        goto not_fast_error;
    next = SLOT(source, T_NEXT);
    if (next == source) {
        /* the last runnable tasklet blocks: revive the innermost run() caller
           (or main) if it is paused, as Scheduler._idle_target does; the
           webcont hub lives on this case (its main waits in run()) */
        PyObject *watchdogs = SLOT(sched, S_WATCHDOGS);
        Py_ssize_t depth = PyList_GET_SIZE(watchdogs);
        next = depth ? PyList_GET_ITEM(watchdogs, depth - 1) : SLOT(sched, S_MAIN);
        if (next == source || SLOT(next, T_NEXT) != Py_None || SLOT(next, T_CHANNEL) != Py_None
                || SLOT(next, T_GREENLET) == Py_None || truth(SLOT(sched, S_THREADBLOCK))
                || (PyObject *)Py_TYPE(value) == bomb_type)
            goto not_fast;
        Py_INCREF(next);
        Py_INCREF(source);
        set_slot(next, T_NEXT, next);  /* the ring: just the revived tasklet */
        set_slot(next, T_PREV, next);
        /* runcount: one leaves, one comes back */
    }
    else {
        if (SLOT(next, T_GREENLET) == Py_None)
            goto not_fast;  /* it never ran: Scheduler.switch has the root start it */
        new_runcount = long_plus(sched, S_RUNCOUNT, -1);
        if (new_runcount == NULL)
            goto not_fast_error;
        Py_INCREF(next);
        Py_INCREF(source);
        before = SLOT(source, T_PREV);
        Py_INCREF(before);
        set_slot(before, T_NEXT, next);
        set_slot(next, T_PREV, before);
        Py_DECREF(before);
        put_slot(sched, S_RUNCOUNT, new_runcount);
    }
    set_slot(sched, S_CURRENT, next);
    put_slot(ch, C_BALANCE, new_balance);
    kept = SLOT(source, T_TEMPVAL);  /* its old value: released after the switch */
    Py_INCREF(value);
    SLOT(source, T_TEMPVAL) = value;
    last = SLOT(ch, C_PREV);
    Py_INCREF(last);
    set_slot(last, NEXT_OF(last, ch), source);
    set_slot(ch, C_PREV, source);
    set_slot(source, T_PREV, last);
    set_slot(source, T_NEXT, ch);
    Py_DECREF(last);
    set_slot(source, T_CHANNEL, ch);
    Py_DECREF(source);
    Py_DECREF(sched);
    *result = switch_to(next);
    Py_DECREF(next);
    Py_XDECREF(kept);
    return 1;

not_fast_error:
    PyErr_Clear();
not_fast:
    Py_XDECREF(new_balance);
    Py_XDECREF(new_runcount);
    Py_DECREF(sched);
    return 0;
}

static PyObject *
channel_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *result, *value;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    /* send(value) or send(value=...), as the Python method takes it */
    if (nargs + nkw != 1 || (nkw && PyUnicode_CompareWithASCIIString(
            PyTuple_GET_ITEM(kwnames, 0), "value") != 0)) {
        PyErr_SetString(PyExc_TypeError, "send() takes exactly one argument: value");
        return NULL;
    }
    value = args[0];
    if (fast_action(self, 1, value, &result))
        return result;
    return PyObject_CallFunction(fallback, "OiO", self, 1, value);
}

static PyObject *
channel_receive(PyObject *self, PyObject *unused)
{
    PyObject *result;
    if (fast_action(self, -1, Py_None, &result))
        return result;
    return PyObject_CallFunction(fallback, "OiO", self, -1, Py_None);
}

static PyMethodDef send_def = {"send", (PyCFunction)(void (*)(void))channel_send,
    METH_FASTCALL | METH_KEYWORDS, "send($self, value)\n--\n\nSend ``value``; blocks until a receiver takes it (see ``preference``)."};
static PyMethodDef receive_def = {"receive", channel_receive, METH_NOARGS,
    "receive($self)\n--\n\nReceive a value; blocks until a sender offers one.  A received bomb explodes."};

static Py_ssize_t
offset_of(PyObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString(type, name);
    Py_ssize_t offset = -1;
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type))
        offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    Py_XDECREF(descr);
    PyErr_Clear();
    return offset;
}

/* setup(tasklet, channel, Scheduler, hooks, shared, local, bomb, _Start, _action,
 *       GreenletExit, _GarbageCollected, greenlet.switch)
 *   -> (send, receive) method descriptors */
static PyObject *
setup(PyObject *module, PyObject *args)
{
    PyObject *tasklet, *channel, *scheduler;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOOOOOOO:setup", &PyType_Type, &tasklet,
                          &PyType_Type, &channel, &PyType_Type, &scheduler, &hooks_obj,
                          &shared_obj, &local_obj, &bomb_type, &start_type, &fallback,
                          &greenlet_exit, &collected_exc, &switch_descr))
        return NULL;
    Py_INCREF(switch_descr);
    Py_INCREF(hooks_obj); Py_INCREF(shared_obj); Py_INCREF(local_obj); Py_INCREF(bomb_type);
    Py_INCREF(start_type);
    Py_INCREF(fallback); Py_INCREF(greenlet_exit); Py_INCREF(collected_exc);
    T_NEXT = offset_of(tasklet, "_next");
    T_PREV = offset_of(tasklet, "_prev");
    T_SCHED = offset_of(tasklet, "_sched");
    T_GREENLET = offset_of(tasklet, "_greenlet");
    T_TEMPVAL = offset_of(tasklet, "_tempval");
    T_CHANNEL = offset_of(tasklet, "_channel");
    T_BLOCK_TRAP = offset_of(tasklet, "_block_trap");
    C_NEXT = offset_of(channel, "_next");
    C_PREV = offset_of(channel, "_prev");
    C_BALANCE = offset_of(channel, "_balance");
    C_PREFERENCE = offset_of(channel, "_preference");
    C_SCHEDULE_ALL = offset_of(channel, "_schedule_all");
    C_CLOSING = offset_of(channel, "_closing");
    S_CURRENT = offset_of(scheduler, "current");
    S_RUNCOUNT = offset_of(scheduler, "runcount");
    S_POSTED = offset_of(scheduler, "posted");
    S_SWITCH_HOOKS = offset_of(scheduler, "switch_hooks");
    S_SWITCH_TRAP = offset_of(scheduler, "switch_trap");
    S_WATCHDOGS = offset_of(scheduler, "watchdogs");
    S_MAIN = offset_of(scheduler, "main");
    S_THREADBLOCK = offset_of(scheduler, "threadblock");
    H_SCHEDULE = offset_of((PyObject *)Py_TYPE(hooks_obj), "schedule");
    H_CHANNEL = offset_of((PyObject *)Py_TYPE(hooks_obj), "channel");
    SH_LOCK = offset_of((PyObject *)Py_TYPE(shared_obj), "lock");
    if (T_NEXT < 0 || T_PREV < 0 || T_SCHED < 0 || T_GREENLET < 0 || T_TEMPVAL < 0
            || T_CHANNEL < 0 || T_BLOCK_TRAP < 0 || C_NEXT < 0 || C_PREV < 0 || C_BALANCE < 0
            || C_PREFERENCE < 0 || C_SCHEDULE_ALL < 0 || C_CLOSING < 0 || S_CURRENT < 0
            || S_RUNCOUNT < 0 || S_POSTED < 0 || S_SWITCH_HOOKS < 0 || S_SWITCH_TRAP < 0
            || S_WATCHDOGS < 0 || S_MAIN < 0 || S_THREADBLOCK < 0
            || H_SCHEDULE < 0 || H_CHANNEL < 0 || SH_LOCK < 0) {
        PyErr_SetString(PyExc_RuntimeError, "stackless_compat._speedups: a slot is missing");
        return NULL;
    }
    str_scheduler = PyUnicode_InternFromString("scheduler");
    str_switch = PyUnicode_InternFromString("switch");
    str_raise = PyUnicode_InternFromString("raise_");
    str_greenlet = PyUnicode_InternFromString("greenlet");
    str_value = PyUnicode_InternFromString("value");
    if (!str_scheduler || !str_switch || !str_raise || !str_greenlet || !str_value)
        return NULL;
    return Py_BuildValue("NN", PyDescr_NewMethod((PyTypeObject *)channel, &send_def),
                         PyDescr_NewMethod((PyTypeObject *)channel, &receive_def));
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, "Bind the fast path to the Python classes."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "stackless_compat._speedups",
    "Optional C fast path for channel.send/receive (see _speedups.c).", -1, module_methods
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module_def);
}
