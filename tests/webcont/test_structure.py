"""webcont's modules import each other without a cycle, at module level or inside functions."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "webcont"


def imports_of(path):
    """The webcont modules ``path`` imports, anywhere in it (relative imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_no_module_of_webcont_imports_one_that_imports_it_back():
    graph = {path.stem: imports_of(path) for path in PACKAGE.glob("*.py")}
    graph = {name: {other for other in targets if other in graph and other != name}
             for name, targets in graph.items()}
    assert graph["_app"] and graph["_durable"]  # the walk found imports at all
    state, cycles = {}, []

    def visit(name, path):
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(path[path.index(other):] + [other] if other in path
                              else [name, other])
            elif other not in state:
                visit(other, path + [other])
        state[name] = "done"
    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: %s" % ["->".join(cycle) for cycle in cycles]
