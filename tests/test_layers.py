"""The layers point one way (docs/architecture.md): core <- statistics <- reports <- command line and apps, with the
model beside the statistics (it needs only the core). Every import of every module (those inside functions
included, those under ``if TYPE_CHECKING:`` not) is read with ``ast``; an import of a higher layer or a cycle fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Source folders and the package each is installed as (pyproject.toml, package-dir).
FOLDERS = {
    "crab_eval": "crab_eval",
    "tasks": "crab_eval.tasks",
    "model": "crab_eval.model",
    "baselines": "crab_eval.baselines",
}

CORE = "core"
STATISTICS = "statistics"
REPORTS = "reports"
MODEL = "model"
APPS = "apps"
# Module (or package) name -> layer; the longest matching prefix decides. Anything not listed is an error, so that
# a new module is placed on purpose.
LAYER_OF = {
    "crab_eval": CORE,  # the package itself (its version) and the core modules below
    "crab_eval.errors": CORE,
    "crab_eval.io": CORE,
    "crab_eval.extras": CORE,
    "crab_eval.provenance": CORE,
    "crab_eval.registry": CORE,
    "crab_eval.results": CORE,
    "crab_eval.predictions": CORE,
    "crab_eval.scoring": CORE,
    "crab_eval.gt_cache": CORE,
    "crab_eval.additive": CORE,
    "crab_eval.tasks": CORE,
    "crab_eval.metrics": CORE,
    "crab_eval.readers": CORE,
    "crab_eval.layouts": CORE,
    "crab_eval.clients": CORE,
    "crab_eval.pairing": STATISTICS,
    "crab_eval.bootstrap": STATISTICS,
    "crab_eval.transfer": STATISTICS,
    "crab_eval.compare": STATISTICS,
    "crab_eval.affinity": STATISTICS,
    "crab_eval.variance_components": STATISTICS,
    "crab_eval.simulation": STATISTICS,
    "crab_eval.reports": REPORTS,
    "crab_eval.transfer_report": REPORTS,
    "crab_eval.compare_report": REPORTS,
    "crab_eval.model": MODEL,
    "crab_eval.media": MODEL,
    "crab_eval.models": MODEL,
    "crab_eval.models.reference": APPS,  # the reference predictors of crab_eval.baselines as models
    "crab_eval.shards": MODEL,
    "crab_eval.cli": APPS,
    "crab_eval.__main__": APPS,
    "crab_eval.commands": APPS,
    "crab_eval.demo": APPS,
    "crab_eval.demo_report": APPS,
    "crab_eval.demo_plan": APPS,
    "crab_eval.evaluation": APPS,
    "crab_eval.api": APPS,
    "crab_eval.synth": APPS,
    "crab_eval.leaderboard": APPS,
    "crab_eval.baselines": APPS,
}
MAY_IMPORT = {
    CORE: {CORE},
    STATISTICS: {CORE, STATISTICS},
    REPORTS: {CORE, STATISTICS, REPORTS},
    MODEL: {CORE, MODEL},
    APPS: {CORE, STATISTICS, REPORTS, MODEL, APPS},
}
# Known edges that break the rule, each with the reason and who removes it. Remove an entry when its edge is gone
# (test_allowed_edges_still_exist fails until then).
ALLOWED: dict[tuple[str, str], str] = {}  # none left


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from X import y`` counts as X.y where that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) - {name} for name, path in found.items()}


def layer(module: str) -> str:
    matches = [p for p in LAYER_OF if module == p or module.startswith(p + ".")]
    assert matches, f"{module} has no layer: add it to LAYER_OF"
    return LAYER_OF[max(matches, key=len)]


def test_every_module_has_a_layer() -> None:
    assert all(layer(module) for module in graph())  # layer() names a module that has none


def test_nothing_imports_a_higher_layer() -> None:
    upward = [
        f"{src} ({layer(src)}) imports {dst} ({layer(dst)})"
        for src, targets in graph().items()
        for dst in sorted(targets)
        if layer(dst) not in MAY_IMPORT[layer(src)] and (src, dst) not in ALLOWED
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    edges = {src: {d for d in dst if (src, d) not in ALLOWED} for src, dst in graph().items()}
    # Tarjan's strongly connected components: a component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_allowed_edges_still_exist() -> None:
    edges = graph()
    stale = [f"{src} -> {dst}" for src, dst in ALLOWED if dst not in edges.get(src, set())]
    assert not stale, f"these edges are gone; remove them from ALLOWED: {stale}"


def test_the_checker_sees_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import b\n"
        "def f():\n    from c import d\n    import e.f\n"
    )
    assert imports_of("x.m", path, {"a.b", "c", "c.d", "e.f"}) == {"c.d", "e.f"}
