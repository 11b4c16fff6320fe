"""``run(timeout=...)``: preemptive scheduling by the watchdog."""


def run_with_timeout(sched, timeout, threadblock, soft, ignore_nesting, totaltimeout):
    raise NotImplementedError("run(timeout=...) is not implemented yet")
