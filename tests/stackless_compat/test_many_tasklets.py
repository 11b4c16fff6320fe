"""Many tasklets in one run(): new greenlets must start on a shallow stack.

A tasklet that ends (or blocks) starts the next new one; started from inside
the previous tasklet's stack, C stacks and recursion depths would pile up.
"""

import stackless_compat as stackless


def test_a_hundred_thousand_queued_tasklets_run_in_one_run_call():
    done = []
    for number in range(100_000):
        stackless.tasklet(done.append)(number)
    stackless.run()
    assert done == list(range(100_000))


def test_thousands_of_tasklets_can_block_one_after_the_other_without_recursion_error():
    channel = stackless.channel()
    tasks = [stackless.tasklet(channel.receive)() for _ in range(5000)]
    stackless.run()
    assert channel.balance == -5000
    for number in range(5000):
        channel.send(number)
    assert not any(task.alive for task in tasks)


def test_deep_recursion_inside_a_late_tasklet_has_the_whole_recursion_limit():
    import sys
    channel = stackless.channel()
    for _ in range(300):
        stackless.tasklet(channel.receive)()
    depths = []

    def recurse(level):
        return level if level == 800 else recurse(level + 1)

    stackless.tasklet(lambda: depths.append(recurse(0)))()
    stackless.run()
    assert depths == [800] and sys.getrecursionlimit() >= 1000
    while channel.balance < 0:
        channel.send(None)
