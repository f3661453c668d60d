"""Imports run one way only (``docs/microarchitecture.md``, "Package layering").

Every ``import`` of the project's packages, including those inside functions, is read with
:mod:`ast` and its module placed in a layer; a module may import only its own layer and
the layers :data:`ALLOWED` lists for it.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mast", "hw", "sim", "cost_models", "codesign", "rtl", "sweep", "bench")

# layer -> module prefixes (the longest matching prefix decides)
LAYERS: dict[str, tuple[str, ...]] = {
    "mast": ("mast",),
    "hw core": (
        "hw",
        "hw.profiles",
        "hw.profiles_cli",
        "hw.program",
        "hw.timing",
        "hw.numerics",
        "hw.fit",
        "hw.toolchain",
    ),
    "hw rtl": ("hw.rtl",),
    "hw compiler": ("hw.compiler",),
    "hw tools": ("hw.export", "hw.synth", "hw.pnr"),
    "sim": ("sim",),
    "cost_models": ("cost_models",),
    "rtl verification": ("rtl",),
    "codesign": ("codesign",),
    "cli": ("codesign.train", "codesign.hw_cli"),
    "sweep": ("sweep",),
    "bench": ("bench",),
}

_HW = {"hw core", "hw rtl", "hw compiler", "hw tools"}
ALLOWED: dict[str, set[str]] = {
    "mast": set(),
    "hw core": {"mast"},
    "hw rtl": {"hw core"},
    "hw compiler": {"hw core", "mast"},
    "hw tools": {"hw core", "hw rtl", "hw compiler", "mast"},
    "sim": {"hw core", "hw compiler"},
    "cost_models": {"hw core", "hw compiler", "mast"},
    "rtl verification": _HW | {"sim", "mast"},
    "codesign": _HW | {"sim", "cost_models", "rtl verification", "mast"},
    "cli": _HW | {"sim", "cost_models", "rtl verification", "codesign", "mast"},
    "sweep": _HW | {"sim", "cost_models", "rtl verification", "codesign", "cli", "mast"},
    "bench": _HW | {"sim", "cost_models", "rtl verification", "codesign", "cli", "sweep", "mast"},
}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name, or ``None`` outside the project's packages."""
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = layer, len(p)
    return best


def _module_name(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: str, source: str, known: set[str]) -> set[str]:
    """Dotted project modules imported anywhere in ``source`` (the file at ``path``)."""
    here = _module_name(path)
    package = here if Path(path).name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def violations(sources: Mapping[str, str]) -> list[str]:
    """``"module -> imported (layer -> layer)"`` for every import the layering forbids."""
    known = {_module_name(p) for p in sources}
    bad = []
    for path, source in sorted(sources.items()):
        src_layer = layer_of(_module_name(path))
        for mod in sorted(imported_modules(path, source, known)):
            dst_layer = layer_of(mod)
            if dst_layer != src_layer and dst_layer not in ALLOWED[src_layer]:
                bad.append(f"{_module_name(path)} -> {mod} ({src_layer} -> {dst_layer})")
    return bad


def _tree_sources() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text()
        for pkg in PACKAGES
        for p in sorted((ROOT / pkg).rglob("*.py"))
    }


def test_every_module_has_a_layer():
    assert [p for p in _tree_sources() if layer_of(_module_name(p)) is None] == []


def test_allowed_layering_has_no_cycle():
    graph = nx.DiGraph([(a, b) for a, deps in ALLOWED.items() for b in deps])
    assert nx.is_directed_acyclic_graph(graph)
    assert "mast" not in {a for a, deps in ALLOWED.items() if deps} - set()
    assert ALLOWED["mast"] == set()


def test_imports_follow_the_layering():
    assert violations(_tree_sources()) == []


def test_a_planted_upward_import_is_reported():
    sources = _tree_sources()
    sources["hw/compiler/planted.py"] = "def f():\n    from sim import simulate\n"
    sources["cost_models/planted.py"] = "from codesign.report import write_run_report\n"
    sources["hw/rtl/planted.py"] = "from ..compiler import ProgramFitError\n"
    assert violations(sources) == [
        "cost_models.planted -> codesign.report (cost_models -> codesign)",
        "hw.compiler.planted -> sim (hw compiler -> sim)",
        "hw.rtl.planted -> hw.compiler (hw rtl -> hw compiler)",
    ]
