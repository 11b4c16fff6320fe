import os

from setuptools import Extension, setup


def greenlet_include():
    """The directory of greenlet's public C header (greenlet ships ``greenlet.h``
    in its package), or None when greenlet is not importable here."""
    try:
        import greenlet
    except ImportError:
        return None
    path = os.path.dirname(greenlet.__file__)
    return path if os.path.exists(os.path.join(path, "greenlet.h")) else None


include = greenlet_include()
setup(
    # The optional C core (stackless_compat/_speedups.c), built against greenlet's C API
    # (pyproject.toml puts greenlet in the build environment): if it cannot be built,
    # the pure-Python implementation is used.  _remote.c (optional too) lets a thread
    # change another thread's run queue (stackless_compat/_threads.py).
    ext_modules=([Extension("stackless_compat._speedups", ["stackless_compat/_speedups.c"],
                            include_dirs=[include], optional=True)] if include else [])
    + [Extension("stackless_compat._remote", ["stackless_compat/_remote.c"], optional=True)],
)
