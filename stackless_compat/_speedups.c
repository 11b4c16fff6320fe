/* The C core of stackless_compat: the types that own the hot state, and the
 * common channel hand-overs on them.
 *
 * What C is for (issue 13, option 1 in part): C owns the state that every
 * hand-over touches -- a tasklet's ring links, greenlet and value in transit
 * (TaskletCore), a channel's chain and balance (ChannelCore), a scheduler's
 * head and counters (SchedulerCore), the process-wide hooks and channel lock
 * (Hooks, Shared) -- as C types that tasklet, channel and Scheduler subclass,
 * the way greenlet defines its own type.  ChannelCore.send/receive do the
 * plain single-thread hand-overs on these structs; every other case
 * (callbacks, threads, switch traps, schedule_all, a tasklet that never ran,
 * block_trap, a closing channel, deadlock and thread waits) calls the Python
 * policy, channel._send or _receive, before changing anything.  No C code reads a
 * Python class's slots: the Python code reaches these fields through the
 * member descriptors below, with the same names _core.py gives the pure
 * Python types.  The object fields are T_OBJECT_EX members, which CPython
 * (3.11+) specialises like __slots__, so the Python policy reads them as
 * fast as on the pure-Python types.  Switches go through greenlet's public
 * C API.
 *
 * Why not the whole tasklet and channel in C: the Python policy (runs,
 * kills, threads, the watchdog) would have to move with it to keep one
 * copy; the plain hand-overs in C already meet the channel target.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
/* greenlet's public C API (its capsule, greenlet.h): verified with greenlet
 * 3.5.6; setup.py and pyproject.toml pin the range */
#include "greenlet.h"

/* the hand-over's entry points: everything they call is inlined into them
 * (a round trip measured ~15% faster than with GCC's own choices) */
#if defined(__GNUC__)
#define HOT __attribute__((flatten))
#else
#define HOT
#endif

typedef struct {
    PyObject_HEAD
    PyObject *sched, *next, *prev, *greenlet, *tempval, *channel, *start, *args;
    char block_trap, atomic, ignore_nesting;
} TaskletCore;

typedef struct {
    PyObject_HEAD
    PyObject *next, *prev;
    Py_ssize_t balance;
    int preference;
    char schedule_all, closing;
} ChannelCore;

typedef struct {
    PyObject_HEAD
    PyObject *current;
    Py_ssize_t runcount;
    PyObject *posted, *switch_hooks;
    Py_ssize_t switch_trap;
    PyObject *watchdogs, *main;
    PyObject *seen_trace, *seen_profile;  /* the thread's functions _tracing last saw */
    char threadblock;
} SchedulerCore;

typedef struct {
    PyObject_HEAD
    PyObject *schedule, *channel, *error;
} Hooks;

typedef struct {
    PyObject_HEAD
    PyObject *lock;
} Shared;

static PyTypeObject TaskletCoreType, ChannelCoreType, SchedulerCoreType, HooksType, SharedType;

#define T(o) ((TaskletCore *)(o))
#define CH(o) ((ChannelCore *)(o))

/* replace a field; the old value is released last */
#define SET(field, v) do { PyObject *old_ = (PyObject *)(field); Py_INCREF(v); \
                           (field) = (v); Py_XDECREF(old_); } while (0)

/* ---- the types: fields, GC support ------------------------------------- */

#define VISIT_ALL(...) do { PyObject *objs_[] = {__VA_ARGS__}; \
    for (size_t i_ = 0; i_ < sizeof(objs_) / sizeof(objs_[0]); i_++) Py_VISIT(objs_[i_]); \
    } while (0)

static int
tasklet_traverse(TaskletCore *self, visitproc visit, void *arg)
{
    VISIT_ALL(self->sched, self->next, self->prev, self->greenlet, self->tempval, self->channel,
              self->start, self->args);
    return 0;
}

static int
tasklet_clear(TaskletCore *self)
{
    Py_CLEAR(self->next);
    Py_CLEAR(self->prev);
    Py_CLEAR(self->channel);
    Py_CLEAR(self->tempval);
    Py_CLEAR(self->start);
    Py_CLEAR(self->args);
    Py_CLEAR(self->greenlet);
    Py_CLEAR(self->sched);
    return 0;
}

static void
tasklet_dealloc(TaskletCore *self)
{
    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, tasklet_dealloc)
    tasklet_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
    Py_TRASHCAN_END
}

static PyObject *
tasklet_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    TaskletCore *self = (TaskletCore *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->sched = Py_NewRef(Py_None);
    self->next = Py_NewRef(Py_None);
    self->prev = Py_NewRef(Py_None);
    self->greenlet = Py_NewRef(Py_None);
    self->tempval = Py_NewRef(Py_None);
    self->channel = Py_NewRef(Py_None);
    self->start = Py_NewRef(Py_None);
    self->args = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static PyMemberDef tasklet_members[] = {
    {"_sched", T_OBJECT_EX, offsetof(TaskletCore, sched), 0, NULL},
    {"_next", T_OBJECT_EX, offsetof(TaskletCore, next), 0, NULL},
    {"_prev", T_OBJECT_EX, offsetof(TaskletCore, prev), 0, NULL},
    {"_greenlet", T_OBJECT_EX, offsetof(TaskletCore, greenlet), 0, NULL},
    {"_tempval", T_OBJECT_EX, offsetof(TaskletCore, tempval), 0, NULL},
    {"_channel", T_OBJECT_EX, offsetof(TaskletCore, channel), 0, NULL},
    {"_start", T_OBJECT_EX, offsetof(TaskletCore, start), 0, NULL},
    {"_args", T_OBJECT_EX, offsetof(TaskletCore, args), 0, NULL},
    {"_block_trap", T_BOOL, offsetof(TaskletCore, block_trap), 0, NULL},
    {"_atomic", T_BOOL, offsetof(TaskletCore, atomic), 0, NULL},
    {"_ignore_nesting", T_BOOL, offsetof(TaskletCore, ignore_nesting), 0, NULL},
    {NULL}
};

static int
channel_traverse(ChannelCore *self, visitproc visit, void *arg)
{
    VISIT_ALL(self->next, self->prev);
    return 0;
}

static int
channel_clear(ChannelCore *self)
{
    Py_CLEAR(self->next);
    Py_CLEAR(self->prev);
    return 0;
}

static void
channel_dealloc(ChannelCore *self)
{
    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, channel_dealloc)
    channel_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
    Py_TRASHCAN_END
}

static PyObject *
channel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ChannelCore *self = (ChannelCore *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->next = Py_NewRef(Py_None);  /* the empty chain: no cycle, freed by refcount */
    self->prev = Py_NewRef(Py_None);
    self->preference = -1;
    return (PyObject *)self;
}

static PyMemberDef channel_members[] = {
    {"_next", T_OBJECT_EX, offsetof(ChannelCore, next), 0, NULL},
    {"_prev", T_OBJECT_EX, offsetof(ChannelCore, prev), 0, NULL},
    {"_balance", T_PYSSIZET, offsetof(ChannelCore, balance), 0, NULL},
    {"_preference", T_INT, offsetof(ChannelCore, preference), 0, NULL},
    {"_schedule_all", T_BOOL, offsetof(ChannelCore, schedule_all), 0, NULL},
    {"_closing", T_BOOL, offsetof(ChannelCore, closing), 0, NULL},
    {NULL}
};

static int
scheduler_traverse(SchedulerCore *self, visitproc visit, void *arg)
{
    VISIT_ALL(self->current, self->posted, self->switch_hooks, self->watchdogs, self->main,
              self->seen_trace, self->seen_profile);
    return 0;
}

/* The running thread's scheduler, borrowed: a C cache of _state._local.scheduler
 * (one lookup of a thread-specific key instead of a threading.local attribute,
 * ~15% of a channel round trip).  Set once by the thread's scheduler, which
 * the thread's locals keep alive; cleared if it is freed in its own thread
 * (at thread exit); another thread never sees it. */
static Py_tss_t current_key = Py_tss_NEEDS_INIT;

static int
scheduler_clear(SchedulerCore *self)
{
    /* a cleared scheduler is no longer this thread's (the C hand-over reads it) */
    if (PyThread_tss_is_created(&current_key) && PyThread_tss_get(&current_key) == (void *)self)
        PyThread_tss_set(&current_key, NULL);
    Py_CLEAR(self->current);
    Py_CLEAR(self->posted);
    Py_CLEAR(self->switch_hooks);
    Py_CLEAR(self->watchdogs);
    Py_CLEAR(self->main);
    Py_CLEAR(self->seen_trace);
    Py_CLEAR(self->seen_profile);
    return 0;
}

static PyObject *
scheduler_bind_thread(PyObject *self, PyObject *unused)
{
    if (PyThread_tss_set(&current_key, self) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot set the thread's scheduler");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef scheduler_methods[] = {
    {"bind_thread", scheduler_bind_thread, METH_NOARGS,
     "bind_thread($self)\n--\n\nMake this the calling thread's scheduler for the C hand-over."},
    {NULL}
};

static void
scheduler_dealloc(SchedulerCore *self)
{
    if (PyThread_tss_get(&current_key) == (void *)self)
        PyThread_tss_set(&current_key, NULL);
    PyObject_GC_UnTrack(self);
    scheduler_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef scheduler_members[] = {
    {"current", T_OBJECT_EX, offsetof(SchedulerCore, current), 0, NULL},
    {"runcount", T_PYSSIZET, offsetof(SchedulerCore, runcount), 0, NULL},
    {"posted", T_OBJECT_EX, offsetof(SchedulerCore, posted), 0, NULL},
    {"switch_hooks", T_OBJECT_EX, offsetof(SchedulerCore, switch_hooks), 0, NULL},
    {"switch_trap", T_PYSSIZET, offsetof(SchedulerCore, switch_trap), 0, NULL},
    {"watchdogs", T_OBJECT_EX, offsetof(SchedulerCore, watchdogs), 0, NULL},
    {"main", T_OBJECT_EX, offsetof(SchedulerCore, main), 0, NULL},
    {"seen_trace", T_OBJECT_EX, offsetof(SchedulerCore, seen_trace), 0, NULL},
    {"seen_profile", T_OBJECT_EX, offsetof(SchedulerCore, seen_profile), 0, NULL},
    {"threadblock", T_BOOL, offsetof(SchedulerCore, threadblock), 0, NULL},
    {NULL}
};

static int
hooks_traverse(Hooks *self, visitproc visit, void *arg)
{
    VISIT_ALL(self->schedule, self->channel, self->error);
    return 0;
}

static int
hooks_clear(Hooks *self)
{
    Py_CLEAR(self->schedule);
    Py_CLEAR(self->channel);
    Py_CLEAR(self->error);
    return 0;
}

static void
hooks_dealloc(Hooks *self)
{
    PyObject_GC_UnTrack(self);
    hooks_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
hooks_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Hooks *self = (Hooks *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->schedule = Py_NewRef(Py_None);
        self->channel = Py_NewRef(Py_None);
        self->error = Py_NewRef(Py_None);
    }
    return (PyObject *)self;
}

static PyMemberDef hooks_members[] = {
    {"schedule", T_OBJECT_EX, offsetof(Hooks, schedule), 0, NULL},
    {"channel", T_OBJECT_EX, offsetof(Hooks, channel), 0, NULL},
    {"error", T_OBJECT_EX, offsetof(Hooks, error), 0, NULL},
    {NULL}
};

static void
shared_dealloc(Shared *self)
{
    Py_CLEAR(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
shared_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Shared *self = (Shared *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->lock = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static PyMemberDef shared_members[] = {
    {"lock", T_OBJECT_EX, offsetof(Shared, lock), 0, NULL},
    {NULL}
};

/* ---- the hand-over ------------------------------------------------------ */

/* the Python objects the hand-over consults (connect()) */
static PyObject *bomb_type, *start_type, *collected_exc;
static int connected;  /* connect() was called: the hand-over may run */
static Hooks *hooks_obj;
static Shared *shared_obj;
static PyObject *str_switch, *str_raise, *str_greenlet, *str_value, *str_send, *str_receive;

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

/* greenlet takes a switch's value in an args tuple, which it drops once the
 * target has the value: one spare 1-tuple is reused for the next switch (an
 * allocation and a collector track/untrack fewer: ~6% of a round trip's
 * instructions).  Its item is NULL while spare, as in a tuple being built. */
#ifndef Py_GIL_DISABLED
static PyObject *spare_args;  /* the GIL guards it */
#endif

static inline PyObject *
take_args(PyObject *value)
{
#ifndef Py_GIL_DISABLED
    PyObject *args = spare_args;
    if (args != NULL) {
        spare_args = NULL;
        PyTuple_SET_ITEM(args, 0, Py_NewRef(value));
        if (!PyObject_GC_IsTracked(args))  /* the collector untracks a tuple of atoms */
            PyObject_GC_Track(args);
        return args;
    }
#endif
    return PyTuple_Pack(1, value);
}

static inline void
give_back_args(PyObject *args)
{
#ifndef Py_GIL_DISABLED
    if (args != NULL && Py_REFCNT(args) == 1 && spare_args == NULL) {
        PyObject *item = PyTuple_GET_ITEM(args, 0);
        PyTuple_SET_ITEM(args, 0, NULL);
        spare_args = args;  /* before the item goes: its __del__ may switch too */
        Py_DECREF(item);
        return;
    }
#endif
    Py_XDECREF(args);
}

/* Scheduler.switch's plain case: ``next`` is already the head; hand it its
 * tempval and switch to its greenlet.  No reference to any tasklet is held
 * while this tasklet stays suspended (the GC promise, _scheduler.py). */
static inline __attribute__((always_inline)) PyObject *
switch_to(PyObject *next)
{
    PyObject *value = T(next)->tempval, *target = T(next)->greenlet, *result;
    T(next)->tempval = Py_NewRef(Py_None);  /* the reference to value moves to us */
    Py_INCREF(target);
    {
        /* straight into greenlet's C API: no method lookup, and fewer C
           frames on the stack greenlet saves for every suspended tasklet */
        PyObject *args = take_args(value);
        result = args ? PyGreenlet_Switch((PyGreenlet *)target, args, NULL) : NULL;
        give_back_args(args);
    }
    Py_DECREF(target);
    Py_DECREF(value);
    /* only the root greenlet receives _Start requests: start that greenlet here */
    while (result != NULL && (PyObject *)Py_TYPE(result) == start_type) {
        PyObject *started = PyObject_GetAttr(result, str_greenlet);
        PyObject *initial = PyObject_GetAttr(result, str_value);
        /* emptied, as Start.forward does: its sender may stay parked holding it */
        if (started != NULL && initial != NULL
                && (PyObject_SetAttr(result, str_greenlet, Py_None) < 0
                    || PyObject_SetAttr(result, str_value, Py_None) < 0))
            Py_CLEAR(started);
        Py_DECREF(result);
        result = NULL;
        if (started != NULL && initial != NULL)
            result = PyObject_CallMethodOneArg(started, str_switch, initial);
        Py_XDECREF(started);
        Py_XDECREF(initial);
    }
    if (result == NULL) {
        if (PyErr_ExceptionMatches(PyExc_GreenletExit)) {
            PyErr_Clear();
            PyErr_SetNone(collected_exc);
        }
        return NULL;
    }
    return explode_or_return(result);
}

/* Per-tasklet tracing (_tracing) swaps trace and profile functions at each
 * switch only while a thread is seen to trace: asking CPython for both at
 * every switch would cost every switch ~4%.  Instead every switch of a
 * thread that swaps nothing compares the thread state's two functions with
 * the ones _tracing last saw (seen_trace, seen_profile: None for none); if
 * either changed, the switch goes through the Python policy, which hands
 * the function to the tasklet that set it (c6b).  Two loads and compares,
 * where an audit hook on sys.settrace would tax every audited call of the
 * process.  The fields are PyThreadState's (Include/cpython/pystate.h, 3.11). */
static inline int
tracing_moved(SchedulerCore *sched)
{
    PyThreadState *ts = PyThreadState_Get();
    PyObject *trace = ts->c_traceobj != NULL ? ts->c_traceobj : Py_None;
    PyObject *profile = ts->c_profileobj != NULL ? ts->c_profileobj : Py_None;
    return trace != sched->seen_trace || profile != sched->seen_profile;
}

/* 1: handled (*result set, maybe NULL with an error); 0: not a plain case,
 * nothing changed.  Code that may run Python (releasing a tempval whose
 * __del__ may use this channel) runs only after the switch back. */
static inline __attribute__((always_inline)) int
fast_action(ChannelCore *ch, int direction, PyObject *value, PyObject **result)
{
    PyObject *sched_obj, *source, *target, *after, *next, *last, *got, *kept;
    SchedulerCore *sched;

    if (!connected || hooks_obj->channel != Py_None || hooks_obj->schedule != Py_None
            || shared_obj->lock != Py_None)
        return 0;
    sched_obj = (PyObject *)PyThread_tss_get(&current_key);
    if (sched_obj == NULL)
        return 0;  /* the thread's first stackless call: Python creates its scheduler */
    Py_INCREF(sched_obj);
    sched = (SchedulerCore *)sched_obj;
    /* a scheduler cleared by the collector (its thread is ending) or a field
       deleted from Python: leave it to the Python policy, which raises */
    if (sched->current == NULL || sched->posted == NULL || sched->switch_hooks == NULL
            || sched->watchdogs == NULL || sched->main == NULL || sched->seen_trace == NULL
            || sched->seen_profile == NULL)
        goto not_fast;
    /* switch_hooks is a tuple, posted a deque (a variable-size object: its size is its length) */
    if (sched->switch_trap || !PyTuple_CheckExact(sched->switch_hooks)
            || PyTuple_GET_SIZE(sched->switch_hooks) || Py_SIZE(sched->posted)
            || tracing_moved(sched))
        goto not_fast;
    source = sched->current;

    if (direction > 0 ? ch->balance < 0 : ch->balance > 0) {
        /* a partner waits: take the first one */
        int prefer = ch->preference == -direction;
        target = ch->next;
        if (T(target)->sched != sched_obj || T(target)->greenlet == Py_None || ch->schedule_all)
            goto not_fast;
        Py_INCREF(target);
        after = T(target)->next;
        Py_INCREF(after);
        if (after == (PyObject *)ch) {  /* empty again */
            SET(ch->next, Py_None);
            SET(ch->prev, Py_None);
        }
        else {
            SET(ch->next, after);
            SET(T(after)->prev, (PyObject *)ch);
        }
        Py_DECREF(after);
        SET(T(target)->next, Py_None);
        SET(T(target)->prev, Py_None);
        SET(T(target)->channel, Py_None);
        ch->balance += direction;
        sched->runcount += 1;
        /* the receiver gets the value, the sender None */
        kept = T(target)->tempval;  /* released once the links are whole */
        got = direction > 0 ? Py_None : kept;
        Py_INCREF(got);
        T(target)->tempval = Py_NewRef(direction > 0 ? value : Py_None);
        if (prefer) {
            /* the partner runs now, right after the caller, who ends up last */
            PyObject *old;
            after = T(source)->next;
            Py_INCREF(after);
            SET(T(source)->next, target);
            SET(T(target)->prev, source);
            SET(T(target)->next, after);
            SET(T(after)->prev, target);
            Py_DECREF(after);
            SET(sched->current, target);
            old = T(source)->tempval;
            T(source)->tempval = got;  /* the reference to got moves in */
            Py_DECREF(sched_obj);
            Py_DECREF(target);  /* the ring holds it */
            *result = switch_to(target);
            Py_XDECREF(old);
            Py_DECREF(kept);
            return 1;
        }
        /* the partner goes to the end of the run queue; the caller goes on */
        last = T(source)->prev;
        Py_INCREF(last);
        SET(T(last)->next, target);
        SET(T(target)->prev, last);
        SET(T(target)->next, source);
        SET(T(source)->prev, target);
        Py_DECREF(last);
        Py_DECREF(target);
        Py_DECREF(sched_obj);
        Py_DECREF(kept);
        *result = explode_or_return(got);
        return 1;
    }

    /* nobody waits: block, unless the Python policy must decide */
    if (T(source)->block_trap || ch->closing)
        goto not_fast;
    next = T(source)->next;
    if (next == source) {
        /* the last runnable tasklet blocks: revive the innermost run() caller
           (or main) if it is paused, as Scheduler._idle_target does; the
           webcont hub lives on this case (its main waits in run()) */
        PyObject *watchdogs = sched->watchdogs;
        Py_ssize_t depth = PyList_Check(watchdogs) ? PyList_GET_SIZE(watchdogs) : 0;
        next = depth ? PyList_GET_ITEM(watchdogs, depth - 1) : sched->main;
        if (next == source || T(next)->next != Py_None || T(next)->channel != Py_None
                || T(next)->greenlet == Py_None || sched->threadblock
                || (PyObject *)Py_TYPE(value) == bomb_type)
            goto not_fast;
        Py_INCREF(next);
        Py_INCREF(source);
        SET(T(next)->next, next);  /* the ring: just the revived tasklet */
        SET(T(next)->prev, next);
        /* runcount: one leaves, one comes back */
    }
    else {
        PyObject *before;
        if (T(next)->greenlet == Py_None)
            goto not_fast;  /* it never ran: Python starts its greenlet */
        Py_INCREF(next);
        Py_INCREF(source);
        before = T(source)->prev;
        Py_INCREF(before);
        SET(T(before)->next, next);
        SET(T(next)->prev, before);
        Py_DECREF(before);
        sched->runcount -= 1;
    }
    SET(sched->current, next);
    ch->balance += direction;
    kept = T(source)->tempval;  /* its old value: released after the switch */
    T(source)->tempval = Py_NewRef(value);
    last = ch->prev == Py_None ? (PyObject *)ch : ch->prev;  /* the first to wait */
    Py_INCREF(last);
    if (last == (PyObject *)ch)
        SET(ch->next, source);
    else
        SET(T(last)->next, source);
    SET(ch->prev, source);
    SET(T(source)->prev, last);
    SET(T(source)->next, (PyObject *)ch);
    Py_DECREF(last);
    SET(T(source)->channel, (PyObject *)ch);
    Py_DECREF(source);
    Py_DECREF(sched_obj);
    Py_DECREF(next);  /* the ring holds it */
    *result = switch_to(next);
    Py_XDECREF(kept);
    return 1;

not_fast:
    Py_DECREF(sched_obj);
    return 0;
}

static PyObject * HOT
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
    if (fast_action(CH(self), 1, value, &result))
        return result;
    return PyObject_CallMethodOneArg(self, str_send, value);
}

static PyObject * HOT
channel_receive(PyObject *self, PyObject *unused)
{
    PyObject *result;
    if (fast_action(CH(self), -1, Py_None, &result))
        return result;
    return PyObject_CallMethodOneArg(self, str_receive, Py_None);
}

static PyMethodDef channel_methods[] = {
    {"send", (PyCFunction)(void (*)(void))channel_send, METH_FASTCALL | METH_KEYWORDS,
     "send($self, value)\n--\n\nSend ``value``; blocks until a receiver takes it"
     " (see ``preference``)."},
    {"receive", channel_receive, METH_NOARGS,
     "receive($self)\n--\n\nReceive a value; blocks until a sender offers one."
     "  A received bomb explodes."},
    {NULL}
};

#define CORE_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC)

static PyTypeObject TaskletCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stackless_compat._speedups.TaskletCore",
    .tp_doc = "A tasklet's state: ring links, scheduler, greenlet, value in transit,"
              " channel, start arguments, flags.",
    .tp_basicsize = sizeof(TaskletCore),
    .tp_flags = CORE_FLAGS,
    .tp_new = tasklet_new,
    .tp_dealloc = (destructor)tasklet_dealloc,
    .tp_traverse = (traverseproc)tasklet_traverse,
    .tp_clear = (inquiry)tasklet_clear,
    .tp_members = tasklet_members,
};

static PyTypeObject ChannelCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stackless_compat._speedups.ChannelCore",
    .tp_doc = "A channel's chain of blocked tasklets, balance and flags.",
    .tp_basicsize = sizeof(ChannelCore),
    .tp_flags = CORE_FLAGS,
    .tp_new = channel_new,
    .tp_dealloc = (destructor)channel_dealloc,
    .tp_traverse = (traverseproc)channel_traverse,
    .tp_clear = (inquiry)channel_clear,
    .tp_members = channel_members,
    .tp_methods = channel_methods,
};

static PyTypeObject SchedulerCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stackless_compat._speedups.SchedulerCore",
    .tp_doc = "A scheduler's head of the ring, counters and the flags the hand-over checks.",
    .tp_basicsize = sizeof(SchedulerCore),
    .tp_flags = CORE_FLAGS,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)scheduler_dealloc,
    .tp_traverse = (traverseproc)scheduler_traverse,
    .tp_clear = (inquiry)scheduler_clear,
    .tp_members = scheduler_members,
    .tp_methods = scheduler_methods,
};

static PyTypeObject HooksType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stackless_compat._speedups.Hooks",
    .tp_doc = "The process-wide schedule and channel callbacks and error handler"
              " (_callbacks.hooks).",
    .tp_basicsize = sizeof(Hooks),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = hooks_new,
    .tp_dealloc = (destructor)hooks_dealloc,
    .tp_traverse = (traverseproc)hooks_traverse,
    .tp_clear = (inquiry)hooks_clear,
    .tp_members = hooks_members,
};

static PyTypeObject SharedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stackless_compat._speedups.Shared",
    .tp_doc = "The channel lock, None while one thread uses stackless (_threads.shared).",
    .tp_basicsize = sizeof(Shared),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = shared_new,
    .tp_dealloc = (destructor)shared_dealloc,
    .tp_members = shared_members,
};

static PyObject *
connect(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"hooks", "shared", "bomb", "start", "collected", NULL};
    PyObject *hooks, *shared, *bomb, *start, *collected;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOO:connect", names,
                                     &HooksType, &hooks, &SharedType, &shared, &bomb, &start,
                                     &collected))
        return NULL;
    Py_XSETREF(bomb_type, Py_NewRef(bomb));
    Py_XSETREF(start_type, Py_NewRef(start));
    Py_XSETREF(collected_exc, Py_NewRef(collected));
    Py_XSETREF(hooks_obj, (Hooks *)Py_NewRef(hooks));
    Py_XSETREF(shared_obj, (Shared *)Py_NewRef(shared));
    connected = 1;  /* last: it turns the hand-over on */
    Py_RETURN_NONE;
}

/* sys.settrace and sys.setprofile install a C function of CPython's own
 * (private) that calls the Python callable; a tracer installed from C, such
 * as cProfile's or coverage's CTracer, installs its own.  Learned once by
 * installing a callable briefly and putting the old function back. */
static Py_tracefunc python_trampoline[2];  /* [trace, profile] */

static int
learn_trampolines(void)
{
    static const char *setters[2] = {"settrace", "setprofile"};
    PyThreadState *ts = PyThreadState_Get();
    PyObject *sys = PyImport_ImportModule("sys"), *callable;
    if (sys == NULL)
        return -1;
    callable = PyObject_GetAttrString(sys, "getrecursionlimit");  /* any callable */
    for (int kind = 0; callable != NULL && kind < 2; kind++) {
        Py_tracefunc old = kind ? ts->c_profilefunc : ts->c_tracefunc;
        PyObject *old_obj = Py_XNewRef(kind ? ts->c_profileobj : ts->c_traceobj);
        PyObject *done = PyObject_CallMethod(sys, setters[kind], "O", callable), *type, *value, *tb;
        if (done != NULL)
            python_trampoline[kind] = kind ? ts->c_profilefunc : ts->c_tracefunc;
        PyErr_Fetch(&type, &value, &tb);  /* putting the old one back needs no error set */
        if (kind)
            PyEval_SetProfile(old, old_obj);
        else
            PyEval_SetTrace(old, old_obj);
        PyErr_Restore(type, value, tb);
        Py_XDECREF(old_obj);
        if (done == NULL) {
            Py_CLEAR(callable);
            break;
        }
        Py_DECREF(done);
    }
    Py_DECREF(sys);
    if (callable == NULL)
        return -1;
    Py_DECREF(callable);
    return 0;
}

static PyObject *
from_c(PyObject *module, PyObject *kind_obj)
{
    long kind = PyLong_AsLong(kind_obj);
    PyThreadState *ts = PyThreadState_Get();
    Py_tracefunc function;
    if ((kind != 0 && kind != 1) || PyErr_Occurred()) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "from_c() takes 0 (trace) or 1 (profile)");
        return NULL;
    }
    if (python_trampoline[kind] == NULL && learn_trampolines() < 0)
        return NULL;
    function = kind ? ts->c_profilefunc : ts->c_tracefunc;
    return PyBool_FromLong(function != NULL && function != python_trampoline[kind]);
}

static PyObject *
tracing_moved_py(PyObject *module, PyObject *sched)
{
    if (!PyObject_TypeCheck(sched, &SchedulerCoreType)) {
        PyErr_SetString(PyExc_TypeError, "tracing_moved() needs a scheduler");
        return NULL;
    }
    if (((SchedulerCore *)sched)->seen_trace == NULL
            || ((SchedulerCore *)sched)->seen_profile == NULL)
        Py_RETURN_TRUE;  /* never looked: look now */
    return PyBool_FromLong(tracing_moved((SchedulerCore *)sched));
}

static PyMethodDef module_methods[] = {
    {"connect", (PyCFunction)(void (*)(void))connect, METH_VARARGS | METH_KEYWORDS,
     "connect(*, hooks, shared, bomb, start, collected)\n--\n\n"
     "Give the hand-over the Python objects it consults (once, from _core.connect)."},
    {"from_c", from_c, METH_O,
     "from_c(kind)\n--\n\n"
     "True if the thread's trace (kind 0) or profile (1) function was installed from C,"
     " not by sys.settrace/setprofile."},
    {"tracing_moved", tracing_moved_py, METH_O,
     "tracing_moved(scheduler)\n--\n\n"
     "True if the thread's trace or profile function is not the one scheduler last saw."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "stackless_compat._speedups",
    "The C core types of stackless_compat and their channel hand-over (see _speedups.c).",
    -1, module_methods
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module;
    PyTypeObject *types[] = {&TaskletCoreType, &ChannelCoreType, &SchedulerCoreType,
                             &HooksType, &SharedType};
    const char *names[] = {"TaskletCore", "ChannelCore", "SchedulerCore", "Hooks", "Shared"};
    str_switch = PyUnicode_InternFromString("switch");
    str_raise = PyUnicode_InternFromString("raise_");
    str_greenlet = PyUnicode_InternFromString("greenlet");
    str_value = PyUnicode_InternFromString("value");
    str_send = PyUnicode_InternFromString("_send");
    str_receive = PyUnicode_InternFromString("_receive");
    if (PyThread_tss_create(&current_key) != 0)
        return PyErr_NoMemory();
    if (!str_switch || !str_raise || !str_greenlet || !str_value || !str_send || !str_receive)
        return NULL;
    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL)
        return NULL;
    module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0
                || PyModule_AddObjectRef(module, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    /* what _core checks: 2 since the slow cases call channel._send/_receive,
     * 3 since watch_tracing, 4 since seen_trace/seen_profile replaced it, 5 from_c */
    if (PyModule_AddIntConstant(module, "PROTOCOL", 5) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
