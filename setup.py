from setuptools import Extension, setup

setup(
    # The optional C fast path for channel send/receive (stackless_compat/_speedups.c):
    # if it cannot be built, the pure-Python implementation is used.
    ext_modules=[Extension("stackless_compat._speedups", ["stackless_compat/_speedups.c"],
                           optional=True)],
)
