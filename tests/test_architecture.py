"""The layout's import rules (docs/ARCHITECTURE.md), checked on the source's import graph.

Every ``import`` statement in the package counts, module-level and inside functions, except
those under ``if TYPE_CHECKING:``; ``importlib`` look-ups by string (the lazy public API, the
scripted registry, deprecated paths) are not edges.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "rqe_wrappers"
PKG = "rqe_wrappers"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_pkg = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> list[tuple[str, bool]]:
    """``(imported module, at module level?)`` for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, child)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append((sub if sub in MODULES else base, top))
            else:
                inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, inner)

    visit(tree, True)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _internal(name: str) -> str | None:
    """The package module an import lands in (the longest known prefix), if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _in(module: str, *areas: str) -> bool:
    return any(module == f"{PKG}.{a}" or module.startswith(f"{PKG}.{a}.") for a in areas)


def _third_party(imported: str, *roots: str) -> bool:
    return imported.split(".")[0] in roots


def test_graph_sees_the_package():
    assert len(MODULES) > 40 and f"{PKG}.srpo.shadow" in MODULES
    assert (f"{PKG}.core.policy", True) in GRAPH[f"{PKG}.srpo.shadow"] or any(
        i.startswith(f"{PKG}.core") for i, _ in GRAPH[f"{PKG}.srpo.shadow"]
    )


def find_cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """Every back edge of a depth-first search, as the cycle it closes."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in edges.get(m, []):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            dfs(m)
    return cycles


def test_find_cycles_finds_them():
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []


def test_no_import_cycles():
    edges = {m: sorted({t for i, _ in GRAPH[m] if (t := _internal(i)) and t != m}) for m in MODULES}
    # a package's __init__ importing its own submodules (to re-export) is not a cycle back
    for m in edges:
        edges[m] = [t for t in edges[m] if not (MODULES[t].name == "__init__.py" and m.startswith(t + "."))]
    cycles = find_cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


TRAINER_FREE = ("core", "seats", "srpo", "aht", "envs", "partners", "errors", "_compat")


def test_wrappers_and_envs_never_import_sb3_or_torch():
    bad = [
        (m, i)
        for m in MODULES
        if _in(m, *TRAINER_FREE)
        for i, _ in GRAPH[m]
        if _third_party(i, "stable_baselines3", "sb3_contrib", "torch") or (_internal(i) and _in(i, "sb3"))
    ]
    assert not bad, f"only rqe_wrappers.sb3 may import SB3/torch: {bad}"


def test_envs_never_import_wrappers():
    bad = [(m, i) for m in MODULES if _in(m, "envs") for i, _ in GRAPH[m] if _in(i, "seats", "srpo", "aht", "sb3")]
    assert not bad, bad


def test_nothing_imports_experiments_or_cli():
    bad = [
        (m, i) for m in MODULES if not _in(m, "experiments", "cli") for i, _ in GRAPH[m] if _in(i, "experiments", "cli")
    ]
    # the zoo's recipes/builders train populations: they may run experiments
    bad = [(m, i) for m, i in bad if not (_in(m, "zoo.publish") and _in(i, "experiments"))]
    assert not bad, f"experiments/ and cli/ are leaves: {bad}"


def test_zoo_read_side_never_imports_training_code():
    read_side = [m for m in MODULES if _in(m, "zoo") and not _in(m, "zoo.publish")]
    bad = [
        (m, i)
        for m in read_side
        for i, top in GRAPH[m]
        if _in(i, "zoo.publish", "experiments", "cli", "sb3.srpo_callback", "sb3.aht_callback", "sb3.vec_env")
        or (top and _third_party(i, "stable_baselines3", "sb3_contrib", "torch"))
    ]
    assert not bad, f"the zoo's read side loads and verifies; it never trains: {bad}"


def test_nothing_imports_the_rllib_package():
    bad = [(m, i) for m in MODULES if not _in(m, "rllib") for i, _ in GRAPH[m] if _in(i, "rllib")]
    assert not bad, f"rllib/ is a leaf (it needs ray): {bad}"


@pytest.mark.parametrize("heavy", ["torch", "stable_baselines3", "matplotlib", "meltingpot", "tensorflow", "ray"])
def test_import_rqe_wrappers_stays_light(heavy):
    code = f"import sys, rqe_wrappers; assert {heavy!r} not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_is_complete_and_lazy():
    import rqe_wrappers

    lazy = set(rqe_wrappers._LAZY)
    assert lazy <= set(rqe_wrappers.__all__), sorted(lazy - set(rqe_wrappers.__all__))
    for name in rqe_wrappers.__all__:
        assert getattr(rqe_wrappers, name) is not None, name


#: package -> the packages of ours it may import (docs/ARCHITECTURE.md, "Packages"); "(top)" is
#: ``rqe_wrappers/__init__.py``; every package may import ``errors`` and ``_compat``. A new arrow
#: between packages is a design decision: add it here and there.
ALLOWED = {
    "(top)": {"_compat", "errors"},
    "errors": set(),
    "_compat": set(),
    "core": {"_compat", "errors"},
    "seats": {"core", "errors"},
    "srpo": {"core", "errors", "seats"},
    "aht": {"_compat", "core", "errors", "seats"},
    "envs": {"core", "errors"},
    "partners": {"core", "envs", "errors"},
    "plots": {"errors"},
    "composed": {"aht", "batched", "core", "envs", "errors", "eval", "partners", "sb3", "seats", "srpo", "zoo"},
    "conformance": {"aht", "core", "errors", "sb3", "seats", "srpo"},
    "batched": {"aht", "core", "envs", "errors", "sb3", "seats", "srpo"},
    "eval": {"(top)", "aht", "batched", "core", "envs", "errors", "partners", "plots", "sb3", "seats", "srpo", "zoo"},
    "sb3": {"_compat", "aht", "core", "errors", "plots", "seats", "srpo"},
    "zoo": {"(top)", "core", "errors", "sb3"},
    "zoo.publish": {"(top)", "core", "envs", "errors", "eval", "experiments", "partners", "sb3", "zoo"},
    "experiments": {"_compat", "aht", "batched", "core", "envs", "errors", "eval", "partners", "plots", "sb3", "seats"}
    | {"srpo", "zoo"},
    "cli": {"(top)", "_compat", "aht", "core", "envs", "errors", "experiments", "partners", "plots", "sb3", "seats"}
    | {"eval", "srpo", "zoo", "zoo.publish"},
    "rllib": {"aht", "core", "errors", "srpo"},  # the wrappers on Ray RLlib: never SB3's side
}


def _package(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "(top)"
    return "zoo.publish" if parts[1:3] == ["zoo", "publish"] else parts[1]


def test_packages_import_only_what_the_architecture_allows():
    bad = sorted(
        (m, t)
        for m in MODULES
        for i, _ in GRAPH[m]
        if (t := _internal(i))
        and _package(t) != _package(m)
        and _package(t) not in ALLOWED[_package(m)] | {"errors", "_compat"}
    )
    assert not bad, f"imports across packages that docs/ARCHITECTURE.md does not allow: {bad}"
