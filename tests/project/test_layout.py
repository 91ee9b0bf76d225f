"""The shape of backend/, read from its source (ast; nothing is imported): no module over
MAX_LINES and no class over MAX_CLASS_LINES but the exceptions named below with their reason, no
import cycle among its modules, and imports that only run down: each package imports only the
layers below its own (LAYERS), the numerics, training, workers, store, streaming and runs know
nothing of the web (backend.api, FastAPI, Starlette), and only the wiring (backend/app/, and
backend/__main__.py, which starts it) imports the routes.

The checks run on backend/ and on small packages written here, which show what each one catches.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MAX_LINES = 400
MAX_CLASS_LINES = 250
# the modules and classes let past the limits, and why; each must still be past them (a module
# split since is taken off the list, so the list never hides a new one)
LONG_MODULES: dict[str, str] = {}
LONG_CLASSES: dict[str, str] = {}
# backend's packages and top-level modules, lowest first: each imports only from its own package and
# the layers below it (two in one layer know nothing of each other); one that is not here fails
LAYERS = (
    ("config", "container"),
    ("core",),
    ("training",),
    ("runtime", "store"),
    ("streaming",),
    ("runs",),
    ("edge",),
    ("api",),
    ("app",),
    ("__main__", "healthcheck"),
)
# packages below the web: none of them may import these
LOWER = ("core", "training", "runtime", "store", "streaming", "runs")
WEB = ("backend.api", "fastapi", "starlette")
WIRING = ("backend.app", "backend.__main__")  # the only importers of backend.api outside it


def modules(root: Path, package: str = "backend") -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under root/package."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(path: Path, name: str) -> set[str]:
    """The names a module imports, wherever in it (a function's lazy import counts) but under
    `if TYPE_CHECKING:`, which never runs; `from a import b` names both a and a.b."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return out


def graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the same tree it imports."""
    return {name: {m for m in imported(path, name) if m in found and m != name} for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def long_modules(found: dict[str, Path]) -> dict[str, int]:
    return {name: n for name, path in found.items() if (n := lines(path)) > MAX_LINES}


def long_classes(found: dict[str, Path]) -> dict[str, int]:
    out = {}
    for name, path in found.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.end_lineno is None:
                continue
            if (n := node.end_lineno - node.lineno + 1) > MAX_CLASS_LINES:
                out[f"{name}.{node.name}"] = n
    return out


def upward(found: dict[str, Path]) -> list[str]:
    """'module -> what it must not import', for each import that runs back up."""
    out = []
    for name, path in found.items():
        names = imported(path, name)
        lower = any(name == f"backend.{p}" or name.startswith(f"backend.{p}.") for p in LOWER)
        wiring = any(name == w or name.startswith(f"{w}.") for w in WIRING)
        in_api = name == "backend.api" or name.startswith("backend.api.")
        bad = set()
        for m in names:
            web = any(m == w or m.startswith(f"{w}.") for w in WEB)
            api = m == "backend.api" or m.startswith("backend.api.")
            if (lower and web) or (api and not wiring and not in_api):
                bad.add(m)
        # `from a.b import c` names a.b and a.b.c: the module, once
        out.extend(f"{name} -> {m}" for m in sorted(bad) if not any(m.startswith(f"{b}.") for b in bad))
    return out


def layer(name: str) -> int | None:
    """The layer of a module of backend (by its package, or itself at the top), None if unlisted."""
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return next((i for i, names in enumerate(LAYERS) if top in names), None)


def downward(found: dict[str, Path]) -> list[str]:
    """'module -> what it imports', for each import between two of backend's packages that does
    not run to a lower layer; 'module: no layer' for a module whose package LAYERS leaves out."""
    out = []
    for name, edges in graph(found).items():
        if name == "backend":
            continue
        own = layer(name)
        if own is None:
            out.append(f"{name}: no layer")
            continue
        bad = set()
        for m in edges:
            other = layer(m)
            if m != "backend" and m.split(".")[:2] != name.split(".")[:2] and (other is None or other >= own):
                bad.add(m)
        # `from a.b import c` names a.b and a.b.c: the module, once
        out.extend(f"{name} -> {m}" for m in sorted(bad) if not any(m.startswith(f"{b}.") for b in bad))
    return out


# ---- backend/ ------------------------------------------------------------------------------------------
BACKEND = modules(ROOT)


def test_no_module_is_longer_than_the_limit_but_the_named_exceptions() -> None:
    long = long_modules(BACKEND)
    assert set(long) - set(LONG_MODULES) == set(), f"modules over {MAX_LINES} lines: {long}"
    assert set(LONG_MODULES) - set(long) == set(), "no longer long: take them off LONG_MODULES"


def test_no_class_is_longer_than_the_limit_but_the_named_exceptions() -> None:
    long = long_classes(BACKEND)
    assert set(long) - set(LONG_CLASSES) == set(), f"classes over {MAX_CLASS_LINES} lines: {long}"
    assert set(LONG_CLASSES) - set(long) == set(), "no longer long: take them off LONG_CLASSES"


def test_no_import_cycle_among_backend_modules() -> None:
    assert cycles(graph(BACKEND)) == []


def test_imports_run_down_only() -> None:
    assert upward(BACKEND) == []


def test_each_package_imports_only_the_layers_below_it() -> None:
    assert downward(BACKEND) == []


def test_the_registry_is_read_where_it_lives() -> None:
    """What is checked is backend/ as it is: the runs are there, its modules are read."""
    edges = graph(BACKEND)
    assert {"backend.runs.registry", "backend.runs.scheduler", "backend.app.main"} <= set(edges)
    assert "backend.runs.registry" in edges["backend.app.main"]
    assert "backend.runs.table" in edges["backend.runs.scheduler"]


# ---- what each check catches, on packages written here -------------------------------------------------
def write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return modules(root)


def test_a_cycle_is_found_through_a_lazy_or_relative_import_not_through_type_checking(tmp_path: Path) -> None:
    found = write(
        tmp_path,
        {
            "backend/__init__.py": "",
            "backend/runs/__init__.py": "",
            "backend/runs/a.py": "from backend.runs import b\n",
            "backend/runs/b.py": "def f():\n    from . import c\n",
            "backend/runs/c.py": "import backend.runs.a\n",
            "backend/runs/d.py": "import typing\nif typing.TYPE_CHECKING:\n    from backend.runs import e\n",
            "backend/runs/e.py": "from backend.runs.d import x\n",
        },
    )
    assert cycles(graph(found)) == [["backend.runs.a", "backend.runs.b", "backend.runs.c"]]


@pytest.mark.parametrize(
    ("module", "text", "caught"),
    [
        ("backend/runs/x.py", "import fastapi\n", ["backend.runs.x -> fastapi"]),
        ("backend/store/x.py", "from starlette.requests import Request\n", ["backend.store.x -> starlette.requests"]),
        ("backend/core/x.py", "from backend.api import deps\n", ["backend.core.x -> backend.api"]),
        ("backend/streaming/x.py", "from backend import api\n", ["backend.streaming.x -> backend.api"]),
        ("backend/app/x.py", "from backend.api import deps\nimport fastapi\n", []),  # the wiring may
        ("backend/edge/x.py", "import starlette\n", []),  # the edge is of the web
    ],
)
def test_an_upward_import_is_found(tmp_path: Path, module: str, text: str, caught: list[str]) -> None:
    found = write(tmp_path, {"backend/__init__.py": "", "backend/api/__init__.py": "", module: text})
    assert upward(found) == caught


@pytest.mark.parametrize(
    ("module", "text", "caught"),
    [
        ("backend/runs/x.py", "from backend.streaming.y import z\n", []),  # down
        ("backend/runs/x.py", "from backend.runs import y\n", []),  # its own package
        ("backend/app/x.py", "import backend.config\n", []),  # a top-level module at the bottom
        (
            "backend/streaming/x.py",
            "def f():\n    from backend.runs import y\n",
            ["backend.streaming.x -> backend.runs"],
        ),
        ("backend/store/x.py", "from ..runtime import y\n", ["backend.store.x -> backend.runtime"]),  # one layer
        ("backend/config.py", "from backend.core.y import z\n", ["backend.config -> backend.core.y"]),
        ("backend/extra/x.py", "x = 1\n", ["backend.extra.x: no layer"]),
        (
            "backend/runs/x.py",
            "from backend.extra import y\n",
            ["backend.extra: no layer", "backend.runs.x -> backend.extra"],
        ),
    ],
)
def test_an_import_that_runs_across_or_up_the_layers_is_found(
    tmp_path: Path, module: str, text: str, caught: list[str]
) -> None:
    files = {"backend/__init__.py": "", "backend/config.py": ""}
    for package in ("core", "runtime", "streaming", "runs"):
        files |= {f"backend/{package}/__init__.py": "", f"backend/{package}/y.py": ""}
    if "extra" in text:
        files["backend/extra/__init__.py"] = ""
    found = write(tmp_path, files | {module: text})
    assert sorted(downward(found)) == caught


def test_a_long_module_and_a_long_class_are_found(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_CLASS_LINES))
    found = write(
        tmp_path,
        {
            "backend/__init__.py": "",
            "backend/big.py": "x = 1\n" * (MAX_LINES + 1),
            "backend/fits.py": "x = 1\n" * MAX_LINES,
            "backend/klass.py": f"class Big:\n{body}",
        },
    )
    assert long_modules(found) == {"backend.big": MAX_LINES + 1}
    assert long_classes(found) == {"backend.klass.Big": MAX_CLASS_LINES + 1}
