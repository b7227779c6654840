"""engine/ by stage: every import (lazy ones inside functions included) goes to the same or an
earlier stage, and no module imports itself back through others. The order is the one
docs/architecture.md draws."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
# Lowest first: foundations, the plug-in packages the spec validates against, then the data path
# (spec -> plan -> folds -> fits -> trials -> report), the runner that drives it, the CLI.
STAGES = ("core", "storage", "causal", "models", "generators", "data",
          "spec", "plan", "folds", "fits", "trials", "report", "execution", "cli")


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ENGINE.rglob("*.py"):
        parts = path.relative_to(ENGINE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the engine modules it imports anywhere in its body."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [f"{node.module}.{a.name}" for a in node.names
                         if f"{node.module}.{a.name}" in mods] or [node.module]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            assert not (isinstance(node, ast.ImportFrom) and node.level), f"{name}: relative import"
            edges[name].update(m for m in found if m in mods and m != name)
    return edges


def _stage(module: str) -> str:
    parts = module.split(".")
    return "core" if len(parts) == 1 else parts[1]


def test_engine_top_level_is_the_stages():
    entries = {p.stem for p in ENGINE.iterdir() if not p.name.startswith("__")}
    assert entries == set(STAGES), "engine/ holds the stage packages only"
    assert all((ENGINE / s / "__init__.py").is_file() for s in STAGES)


def test_no_module_imports_a_later_stage():
    mods = _modules()
    later = [f"{a} ({_stage(a)}) imports {b} ({_stage(b)})"
             for a, targets in _imports(mods).items() for b in targets
             if STAGES.index(_stage(b)) > STAGES.index(_stage(a))]
    assert later == []


def test_no_import_cycle():
    mods = _modules()
    edges = _imports(mods)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return []

    for module in sorted(mods):
        if module not in state:
            cycle = visit(module, [])
            assert not cycle, " -> ".join(cycle)
