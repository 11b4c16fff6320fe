"""``install()``: make ``import stackless`` give ``stackless_compat``."""

import builtins
import sys

__all__ = ["install"]


def install():
    """Alias this package as the ``stackless`` module and put ``TaskletExit``
    in ``builtins``, as Stackless does, so legacy code runs unchanged."""
    package = sys.modules[__name__.rpartition(".")[0]]
    sys.modules["stackless"] = package
    builtins.TaskletExit = package.TaskletExit
    return package
