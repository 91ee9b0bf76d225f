"""The page's modules (frontend/js, plain ES modules, no build step) as their imports link them:
every static import names a module that is there, no module imports itself back through others
(a cycle runs one module's body before the other's exports are set: a TDZ error, or an import
that is still undefined, depending on which the page happens to load first), and no module
grows past about 400 lines."""

from __future__ import annotations

import re
from pathlib import Path

JS = Path(__file__).resolve().parents[2] / "frontend" / "js"
MAX_LINES = 400
# modules allowed past MAX_LINES, each with its reason (none at present)
LONG: dict[str, str] = {}

# `import ... from "./x.js"` and `export ... from "./x.js"` (over several lines too), and a bare
# `import "./x.js"`; at the start of a line, so that a comment or a string that mentions one is not
# read as one. Dynamic imports (`import("./x.js")`) are followed at run time, after every module
# has run: a cycle through one does no harm, so they are only checked to name a module that is there.
STATIC = re.compile(
    r'^\s*(?:import|export)\b[^;"\'`]*?\bfrom\s*["\']([^"\']+)["\']'  # import/export ... from "..."
    r'|^\s*import\s*["\']([^"\']+)["\']',  # import "..."
    re.M,
)
DYNAMIC = re.compile(r'\bimport\(\s*["\']([^"\']+)["\']\s*\)')


def modules() -> dict[str, str]:
    return {p.relative_to(JS).as_posix(): p.read_text(encoding="utf-8") for p in sorted(JS.rglob("*.js"))}


def resolve(module: str, spec: str) -> str:
    """The path under frontend/js that `spec`, imported by `module`, names."""
    parts = module.split("/")[:-1]
    for part in spec.split("/"):
        if part == "..":
            assert parts, f"{module}: {spec!r} leaves frontend/js"
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def imports(module: str, text: str) -> tuple[list[str], list[str]]:
    """The modules `module` imports: (static, dynamic), as paths under frontend/js."""
    static = [a or b for a, b in STATIC.findall(text)]
    dynamic = DYNAMIC.findall(text)
    for spec in static + dynamic:
        assert spec.startswith(("./", "../")), f"{module}: {spec!r} is not a relative path (there is no build step)"
    return [resolve(module, s) for s in static], [resolve(module, s) for s in dynamic]


def graph() -> dict[str, list[str]]:
    found = modules()
    edges: dict[str, list[str]] = {}
    for module, text in found.items():
        static, dynamic = imports(module, text)
        for target in static + dynamic:
            assert target in found, f"{module} imports {target}, which is not there"
        edges[module] = static
    return edges


def cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """Each import cycle found by a depth-first walk, as the modules on it (first one repeated)."""
    found: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def walk(module: str) -> None:
        path.append(module)
        on_path.add(module)
        for target in edges.get(module, []):
            if target in on_path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                walk(target)
        path.pop()
        on_path.discard(module)
        done.add(module)

    for module in sorted(edges):
        if module not in done:
            walk(module)
    return found


def test_the_parser_reads_the_imports_the_page_has() -> None:
    """The checks below are only as good as the parse: it finds imports of each form the modules use."""
    edges = graph()
    assert len(edges) > 30
    assert "state.js" in edges["single.js"] and "compare/view.js" in edges["single.js"]
    assert "../state.js" not in edges["compare/view.js"] and "state.js" in edges["compare/view.js"]
    assert imports("main.js", modules()["main.js"])[1] == ["compare/view.js", "single.js"]
    text = 'import {\n  a,\n  b as c,\n} from "../x.js";\nexport { d } from "./y.js";\nimport "./z.js";\n'
    assert imports("sub/m.js", text + '// import e from "./no.js"\n') == (["x.js", "sub/y.js", "sub/z.js"], [])
    # every `from "./..."` in a module is one the parse read
    for module, text in modules().items():
        assert len(imports(module, text)[0]) >= len(re.findall(r'\bfrom\s*"\.\.?/', text)), module
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_no_module_past_400_lines() -> None:
    counts = {module: text.count("\n") for module, text in modules().items()}
    long = {module: n for module, n in counts.items() if n > MAX_LINES and module not in LONG}
    assert long == {}, f"split these modules (or list one in LONG with its reason): {long}"
    assert set(LONG) <= set(counts), "LONG names a module that is gone"
