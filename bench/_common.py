"""Shared helpers for the benchmarks: medians of repeats and a ratio table.

The machine is shared and noisy, so every benchmark runs each contender
several times, interleaved, and reports medians and ratios to a baseline
measured in the same run.
"""

import statistics
import time


def measure(contenders, repeats=7):
    """Run each ``name -> fn()`` (fn returns seconds per operation) ``repeats``
    times, interleaved; return ``name -> median``."""
    samples = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            samples[name].append(fn())
    return {name: statistics.median(values) for name, values in samples.items()}


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def print_table(title, results, baseline, unit="ns", scale=1e9):
    """Print one line per contender: median and ratio to ``baseline``."""
    base = results[baseline]
    print(title)
    print("  %-34s %12s %8s" % ("contender", "median " + unit, "ratio"))
    for name, value in results.items():
        print("  %-34s %12.1f %7.2fx" % (name, value * scale, value / base))
