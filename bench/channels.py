"""Channel ping-pong round trip: stackless_compat vs raw greenlet and others.

One round trip = A sends to B, B sends back to A.  The baseline is the same
ping-pong done with two bare ``greenlet.switch`` calls.  The table says which
core ran: the C types of ``_speedups``, or pure Python with
``STACKLESS_COMPAT_PURE=1``.  Targets (issue 13): <= 1.3x with the C core,
<= 3x in pure Python.  The pure-Python floor is the least any channel in
Python on greenlet does (``_Floor``): what a pure core can approach, never
beat.  gevent and asyncio
are measured when installed; OS threads with ``queue.Queue`` for scale.

    python bench/channels.py [--rounds N] [--repeats R]
"""

import argparse
import asyncio
import collections
import os
import queue
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from greenlet import getcurrent, greenlet  # noqa: E402

import stackless_compat as stackless  # noqa: E402
from stackless_compat import _core  # noqa: E402
from _common import measure, print_table, timed  # noqa: E402


def raw_greenlet(rounds):
    main = getcurrent()

    def echo(value):
        while True:
            value = main.switch(value)

    partner = greenlet(echo)
    partner.switch(None)

    def loop():
        switch = partner.switch
        for i in range(rounds):
            switch(i)
    return timed(loop) / rounds


def stackless_channels(rounds):
    ping, pong = stackless.channel(), stackless.channel()
    echo, loop = _ping_pong(ping, pong, rounds)
    stackless.tasklet(echo)()
    stackless.schedule()  # let echo block on ping
    return timed(loop) / rounds


def _ping_pong(ping, pong, rounds):
    """``(echo, loop)`` over two channels with send/receive: echo sends back
    what ``ping`` brings, ``loop`` (the timed side) sends and waits."""
    def echo(*_):  # (a greenlet's first switch passes one argument)
        receive, send = ping.receive, pong.send
        for _ in range(rounds):
            send(receive())

    def loop():
        send, receive = ping.send, pong.receive
        for i in range(rounds):
            send(i)
            receive()
    return echo, loop


class _Floor:
    """The least a pure-Python channel on greenlet must do per action: find
    the thread's scheduler, match or queue the tasklet, keep the run queue
    and switch.  No callbacks, traps, threads, kill or preference choices;
    deques instead of linked rings.  Measured to show the floor under any
    pure-Python core (issue 13), not used by stackless_compat."""

    local = threading.local()

    class Task:
        __slots__ = ("greenlet", "tempval")

        def __init__(self, greenlet):
            self.greenlet = greenlet
            self.tempval = None

    class Channel:
        __slots__ = ("waiting", "balance")

        def __init__(self):
            self.waiting = collections.deque()
            self.balance = 0

        # send and receive written out apart: one Python frame per action
        def send(self, value):
            sched = _Floor.local.scheduler  # [current tasklet, run queue]
            source = sched[0]
            balance = self.balance
            self.balance = balance + 1
            if balance < 0:  # a receiver waits: preferred, it runs now with the value
                next = self.waiting.popleft()
                sched[1].append(source)
            else:
                source.tempval = value
                self.waiting.append(source)
                next = sched[1].popleft()
                value, next.tempval = next.tempval, None
            sched[0] = next
            return next.greenlet.switch(value)

        def receive(self):
            sched = _Floor.local.scheduler
            source = sched[0]
            balance = self.balance
            self.balance = balance - 1
            if balance > 0:  # a sender waits: take its value; it is runnable again
                target = self.waiting.popleft()
                sched[1].append(target)
                value, target.tempval = target.tempval, None
                return value
            self.waiting.append(source)
            next = sched[1].popleft()
            sched[0] = next
            value, next.tempval = next.tempval, None
            return next.greenlet.switch(value)


def floor_channels(rounds):
    ping, pong = _Floor.Channel(), _Floor.Channel()
    main = _Floor.Task(getcurrent())
    echo, loop = _ping_pong(ping, pong, rounds)
    worker = _Floor.Task(greenlet(echo))
    _Floor.local.scheduler = [worker, collections.deque([main])]
    worker.greenlet.switch(None)  # echo blocks on ping
    return timed(loop) / rounds


def gevent_channels(rounds):
    import gevent
    from gevent.queue import Channel
    ping, pong = Channel(), Channel()

    def echo():
        for _ in range(rounds):
            pong.put(ping.get())

    def loop():
        for i in range(rounds):
            ping.put(i)
            pong.get()
    worker = gevent.spawn(echo)
    gevent.sleep(0)
    seconds = timed(loop) / rounds
    worker.join()
    return seconds


def asyncio_futures(rounds):
    async def main():
        loop = asyncio.get_running_loop()
        box = {}

        async def echo():
            for _ in range(rounds):
                box["ping"] = loop.create_future()
                value = await box["ping"]
                box["pong"].set_result(value)

        task = asyncio.ensure_future(echo())
        await asyncio.sleep(0)
        start = loop.time()
        for i in range(rounds):
            box["pong"] = loop.create_future()
            box["ping"].set_result(i)
            await box["pong"]
        seconds = (loop.time() - start) / rounds
        await task
        return seconds
    return asyncio.run(main())


def asyncio_queues(rounds):
    async def main():
        ping, pong = asyncio.Queue(1), asyncio.Queue(1)

        async def echo():
            for _ in range(rounds):
                await pong.put(await ping.get())

        task = asyncio.ensure_future(echo())
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(rounds):
            await ping.put(i)
            await pong.get()
        seconds = (loop.time() - start) / rounds
        await task
        return seconds
    return asyncio.run(main())


def os_threads(rounds):
    ping, pong = queue.Queue(), queue.Queue()

    def echo():
        for _ in range(rounds):
            pong.put(ping.get())
    worker = threading.Thread(target=echo)
    worker.start()

    def loop():
        for i in range(rounds):
            ping.put(i)
            pong.get()
    seconds = timed(loop) / rounds
    worker.join()
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    n = args.rounds
    contenders = {
        "raw greenlet.switch ping-pong": lambda: raw_greenlet(n),
        "stackless_compat channel": lambda: stackless_channels(n),
        "pure-Python floor (minimal)": lambda: floor_channels(n),
        "asyncio futures": lambda: asyncio_futures(n),
        "asyncio.Queue(1)": lambda: asyncio_queues(n),
        "threads + queue.Queue": lambda: os_threads(max(n // 10, 1000)),
    }
    try:
        import gevent  # noqa: F401
        contenders["gevent.queue.Channel"] = lambda: gevent_channels(n)
    except ImportError:
        print("(gevent not installed: skipped)")
    results = measure(contenders, args.repeats)
    pure = not _core.SPEEDUPS
    print_table("channel round trip (%d rounds, median of %d, %s)"
                % (n, args.repeats, "pure Python" if pure else "C core"),
                results, "raw greenlet.switch ping-pong")
    ratio = results["stackless_compat channel"] / results["raw greenlet.switch ping-pong"]
    target = 3.0 if pure else 1.3  # issue 13
    best_async = min(results["asyncio futures"], results["asyncio.Queue(1)"])
    summary = ("summary: channel round trip %.0f ns = %.2fx raw greenlet (%s; target <= %.1fx:"
               " %s); %.2fx asyncio best"
               % (results["stackless_compat channel"] * 1e9, ratio,
                  "pure Python" if pure else "C core", target,
                  "met" if ratio <= target else "NOT met",
                  results["stackless_compat channel"] / best_async))
    summary += "; pure-Python floor %.2fx raw greenlet" % (
        results["pure-Python floor (minimal)"] / results["raw greenlet.switch ping-pong"])
    if "gevent.queue.Channel" in results:
        summary += "; %.2fx gevent" % (results["stackless_compat channel"]
                                       / results["gevent.queue.Channel"])
    print(summary)


if __name__ == "__main__":
    main()
