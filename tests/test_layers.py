"""The package layers: data flows downward and nothing imports upward.

The order is the README's layer map (and ARCHITECTURE.md's): a package may import only the
packages below it. A new top-level package must be placed here on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "serendip"

#: lowest first
LAYERS = [
    "data",
    "store",
    "privacy",
    "models",
    "serving",
    "pipeline",
    "evaluation",
    "spark",
    "experiments",
    "operations",
    "service",
    "reporting",
    "cli",
]
#: modules any layer may import: no imports of the rest of serendip (errors, thread limits, the
#: JSON helper, a scoped cache) or pure functions over arrays (the metrics the weighted hybrid
#: fits weights by)
LEAVES = {
    "serendip.errors",
    "serendip.threads",
    "serendip.jsonsafe",
    "serendip.scoped",
    "serendip.evaluation.metrics",
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("serendip.")}


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LAYERS)


def test_nothing_imports_upward() -> None:
    upward = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).parts
        if len(rel) == 1:
            continue  # top-level modules (errors, threads, ...) are leaves themselves
        own = LAYERS.index(rel[0])
        for module in _imports(path):
            if module in LEAVES:
                continue
            target = module.split(".")[1]
            if target in LAYERS and LAYERS.index(target) > own:
                upward.append(f"{path.relative_to(SRC)} imports {module}")
    assert not upward, "\n".join(sorted(upward))


def test_the_leaves_import_only_leaves_and_the_lowest_layer() -> None:
    for leaf in LEAVES:
        path = SRC.joinpath(*leaf.split(".")[1:]).with_suffix(".py")
        others = {m for m in _imports(path) if m not in LEAVES}
        assert all(m.startswith(f"serendip.{LAYERS[0]}.") for m in others), (leaf, others)
