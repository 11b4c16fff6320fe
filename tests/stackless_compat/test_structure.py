"""The package's shape: modules import each other one way, and one owner writes the head."""

import ast
import os

import stackless_compat

PACKAGE_DIR = os.path.dirname(stackless_compat.__file__)


def _modules():
    for name in sorted(os.listdir(PACKAGE_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(PACKAGE_DIR, name)) as source:
                yield name[:-3], ast.parse(source.read())


def _sibling_imports(tree):
    """(sibling module names, whether any import sits inside a function)."""
    names, nested = set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module)
            else:
                names.update(alias.name for alias in node.names)
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(func)):
                nested = True
    return names, nested


def test_no_module_imports_inside_functions_and_the_imports_form_no_cycle():
    graph = {}
    for name, tree in _modules():
        names, nested = _sibling_imports(tree)
        if name != "_core":  # the one optional import: the C extension, if it was built
            assert not nested, "%s imports inside a function" % name
        graph[name] = {n for n in names if n != "_speedups"}
    done, path = set(), []

    def visit(name):
        assert name not in path, "import cycle: %s" % " -> ".join(path + [name])
        if name in done:
            return
        path.append(name)
        for dep in graph.get(name, ()):
            visit(dep)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_only_the_scheduler_writes_the_head_of_the_ring():
    writers = set()
    for name, tree in _modules():
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in ("current", "runcount"):
                    writers.add(name)
    assert writers == {"_scheduler"}


def test_the_thread_side_of_the_scheduler_is_a_mixin_of_the_scheduler_alone():
    from stackless_compat._scheduler import Scheduler
    from stackless_compat._scheduler_threads import SchedulerThreads

    assert SchedulerThreads in Scheduler.__mro__ and SchedulerThreads.__slots__ == ()
    users = [name for name, tree in _modules() if name not in ("_scheduler", "_scheduler_threads")
             and "_scheduler_threads" in _sibling_imports(tree)[0]]
    assert users == []


#: the style's "about 400 lines or less", for every Python module of the package
MAX_LINES = 400


def test_no_module_is_longer_than_about_400_lines():
    for name in sorted(os.listdir(PACKAGE_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(PACKAGE_DIR, name)) as source:
                count = len(source.read().splitlines())
            assert count <= MAX_LINES, "%s has %d lines: split it along a concept" % (name, count)
