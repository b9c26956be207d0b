"""The package layout is the architecture: layers import only downwards, and no module import cycle.

Every ``import`` in every module counts, including those inside functions (a cycle held together by a
function-level import is still a cycle). Layers, lowest first; a layer may import only from layers below it
(or itself). ``pkcsf/__init__.py`` and ``pkcsf/facade.py`` are the top-level facade and may import anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "pkcsf"

# lowest first; entries in one tuple are independent siblings (neither imports the other)
LAYERS = [
    ("core",),
    ("solvers",),
    ("engine",),
    ("analysis",),
    ("trials", "pd", "plotting"),
    ("clinical",),
    ("report",),
    ("cli",),
]
FACADE = {"pkcsf", "pkcsf.facade"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, mod: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "pkcsf")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "pkcsf":
                continue
            out.add(target)
            for a in node.names:      # "from pkcsf.x import y" may import the module pkcsf.x.y
                out.add(f"{target}.{a.name}")
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    g = {}
    for mod, path in files.items():
        g[mod] = {t for t in _imports(path, mod) if t in files and t != mod}
    return g


def _layer(mod: str) -> int | None:
    parts = mod.split(".")
    if len(parts) < 2:
        return None
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    return None


def test_every_subpackage_has_a_layer():
    subs = sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    known = {n for names in LAYERS for n in names}
    assert set(subs) <= known, f"sub-packages without a layer: {sorted(set(subs) - known)}"
    loose = sorted(p.name for p in PKG.glob("*.py") if p.stem not in ("__init__", "facade", "__main__"))
    assert not loose, f"top-level modules outside the layers: {loose}"


def test_layers_import_only_downwards():
    bad = []
    for mod, targets in _graph().items():
        if mod in FACADE:
            continue
        lm = _layer(mod)
        for t in targets:
            lt = _layer(t)
            if t in FACADE:
                bad.append(f"{mod} -> {t} (the facade is the top)")
            elif lm is not None and lt is not None and lt > lm:
                bad.append(f"{mod} -> {t} ({LAYERS[lm]} may not import {LAYERS[lt]})")
            elif lm is not None and lt is not None and lt == lm and mod.split(".")[1] != t.split(".")[1]:
                bad.append(f"{mod} -> {t} (siblings {mod.split('.')[1]} and {t.split('.')[1]} are independent)")
    assert not bad, "layer violations:\n" + "\n".join(sorted(bad))


def test_no_import_cycle():
    g = _graph()
    # Tarjan's strongly connected components
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)
    # a package importing its own sub-modules (re-exports) is not a cycle of the architecture
    cycles = []
    for comp in sccs:
        if len(comp) < 2:
            continue
        inner = [m for m in comp if not any(o.startswith(m + ".") for o in comp)]
        if len(inner) >= 2 or len(comp) > len(inner) + 1:
            cycles.append(sorted(comp))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
