"""The tree's layer rule, read from the code: every import of every module (also those inside
functions) goes down the layers, and no two modules import each other round a circle.

    faces (app, cli, ui)  ->  jobs  ->  library  ->  engine  ->  foundation
    lab (measuring) beside the faces, imported only by cli/lab.py (and scripts/, tests/)
"""
from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "sba_desktop"
FOUNDATION = {"sba_desktop", "sba_desktop.errors", "sba_desktop.files", "sba_desktop.paths", "sba_desktop.logs",
              "sba_desktop.text", "sba_desktop.diagnostics"}
FLOOR = {"foundation": 0, "engine": 1, "library": 2, "jobs": 3, "lab": 4, "cli": 5, "ui": 5, "app": 6}
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The product's modules this one imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import module` imports the module; `from module import name` the module
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import sba_desktop.engine.sba` -> that module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _layer(name: str) -> str:
    if name in FOUNDATION or name == "sba_desktop.__main__":
        return "app" if name == "sba_desktop.__main__" else "foundation"
    return name.split(".")[1]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def test_every_module_has_a_layer():
    unknown = sorted(n for n in _modules() if _layer(n) not in FLOOR)
    assert not unknown, f"modules outside every layer: {unknown}"


def arrows_against_layers(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for name, deps in graph.items():
        for dep in deps:
            a, b = _layer(name), _layer(dep)
            if a == b:
                continue
            if FLOOR[b] >= FLOOR[a]:
                wrong.append(f"{name} ({a}) imports {dep} ({b})")
            elif b == "lab" and name != "sba_desktop.cli.lab":
                wrong.append(f"{name} imports the measuring code {dep}: only cli/lab.py may")
    return sorted(wrong)


def test_imports_go_down_the_layers():
    wrong = arrows_against_layers(_graph())
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph = _graph()
    # Tarjan's strongly connected components: any component of two or more modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_no_product_module_is_too_long():
    long = {n: len(p.read_text().splitlines()) for n, p in _modules().items()}
    long = {n: k for n, k in long.items() if k > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_checker_sees_an_arrow_up_also_inside_a_function(tmp_path):
    """The checker itself, on a module written here: a library module importing a job inside a
    function, and a window module importing the measuring code, are both reported."""
    src = tmp_path / "probe.py"
    src.write_text("def f():\n    from sba_desktop.jobs.index import IndexJob\n")
    known = set(_modules())
    deps = _imports("sba_desktop.library.probe", src, known)
    assert deps == {"sba_desktop.jobs.index"}
    wrong = arrows_against_layers({"sba_desktop.library.probe": deps,
                                   "sba_desktop.ui.probe": {"sba_desktop.lab.metrics"},
                                   "sba_desktop.cli.lab": {"sba_desktop.lab.metrics"}})
    assert len(wrong) == 2 and "library.probe (library) imports" in wrong[0] and "ui.probe" in wrong[1]
