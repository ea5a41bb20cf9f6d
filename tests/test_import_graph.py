"""The package's import graph: stages only import downwards, and no module imports itself back.

Layers (low to high): core go1o4.{contract, config, geometry, policy_contract, rl} < data < sim_pretrain <
robot_runtime < offline_finetune < online_finetune < experiments < cli. offline_finetune is sim-free (never
sim_pretrain or robot_runtime); data imports no stage; the real-robot half of robot_runtime never imports the
simulated Go1 or sim_pretrain. Every import counts, also the lazy ones inside functions.
"""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
# installed name -> folder (pyproject package-dir)
PACKAGES = {
    "go1o4": ROOT / "go1o4",
    "go1o4.data": ROOT / "data",
    "go1o4.sim_pretrain": ROOT / "sim_pretrain",
    "go1o4.robot_runtime": ROOT / "robot_runtime",
    "go1o4.offline_finetune": ROOT / "offline_finetune",
    "go1o4.online_finetune": ROOT / "online_finetune",
}
LAYERS = ["core", "data", "sim_pretrain", "robot_runtime", "offline_finetune", "online_finetune", "experiments",
          "cli"]
FORBIDDEN = {  # layer -> lower layers it still may not import
    "offline_finetune": {"sim_pretrain", "robot_runtime"},
    "data": {"sim_pretrain", "robot_runtime", "offline_finetune", "online_finetune", "experiments"},
}
# The simulator half of robot_runtime; every other runtime module runs on the real robot. The rollout API
# drives the simulated Go1 (scripted resetter); demo stands the simulated Go1 up.
SIM_SIDE = ("go1o4.robot_runtime.simulated_go1", "go1o4.robot_runtime.demo", "go1o4.robot_runtime.rollout")
# Entry points that run on the real robot or start a simulated one: the simulator only in a function (lazily,
# on the simulated path), never at import.
CHOOSERS = ("go1o4.robot_runtime.session_cli",)


def modules() -> Dict[str, Path]:
    """Every module of the installed namespace: dotted name -> file."""
    out = {}
    for pkg, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg] + parts)
            if pkg == "go1o4" and len(parts) >= 1 and "go1o4." + parts[0] in PACKAGES:
                continue
            out[name] = path
    return out


def layer(module: str) -> str:
    """The layer a go1o4 module belongs to."""
    parts = module.split(".")
    if len(parts) < 2:
        return "core"
    if parts[1] == "cli":
        return "cli"
    if parts[1] in LAYERS:
        return parts[1]
    return "core"


def imports(name: str, path: Path, known: Set[str], top_level: bool = False) -> List[Tuple[str, int]]:
    """The go1o4 modules ``name`` imports (resolving relative imports and ``from pkg import module``); with
    ``top_level`` only those run at import time (not inside a function)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out = []
    nodes = ast.walk(tree)
    if top_level:
        nodes = [n for n in _outside_functions(tree)]
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_pkg else anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = []
            for a in node.names:
                sub = base + "." + a.name
                targets.append(sub if sub in known else base)
        else:
            continue
        for t in targets:
            if t == "go1o4" or t.startswith("go1o4."):
                while t not in known and "." in t:
                    t = t.rsplit(".", 1)[0]
                out.append((t, node.lineno))
    return out


def _outside_functions(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield child
        yield from _outside_functions(child)


def graph(top_level: bool = False) -> Dict[str, List[Tuple[str, int]]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known, top_level) for name, path in mods.items()}


def simulator(dst: str) -> bool:
    return dst.startswith("go1o4.robot_runtime.simulated_go1") or layer(dst) == "sim_pretrain"


def upward(src: str, dst: str) -> Optional[str]:
    """Why ``src`` may not import ``dst``; None when it may."""
    a, b = layer(src), layer(dst)
    if LAYERS.index(b) > LAYERS.index(a):
        return "%s (%s) imports %s (%s), a higher layer" % (src, a, dst, b)
    if b in FORBIDDEN.get(a, ()):
        return "%s (%s) may not import %s (%s)" % (src, a, dst, b)
    if a == "robot_runtime" and not src.startswith(SIM_SIDE + CHOOSERS) and src != "go1o4.robot_runtime":
        if simulator(dst):
            return "real-robot module %s imports the simulator %s" % (src, dst)
    return None


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    g = graph()
    assert len(g) > 100
    assert "go1o4.data.reader" in g and "go1o4.robot_runtime.session" in g
    # a lazy import inside a function is seen too
    assert any(dst == "go1o4.offline_finetune.train" for dst, _ in g["go1o4.offline_finetune.cli"])


def test_no_upward_import():
    bad = []
    for src, targets in graph().items():
        for dst, line in targets:
            why = upward(src, dst)
            if why:
                bad.append("%s:%d: %s" % (src, line, why))
    assert not bad, "\n".join(bad)


def test_the_real_robot_path_never_imports_the_simulator_at_import_time():
    """``go1o4 session --robot-ip ...`` imports session_cli; the simulator is imported only on the simulated path."""
    g = graph(top_level=True)
    bad = ["%s:%d imports %s" % (src, line, dst) for src in CHOOSERS for dst, line in g[src] if simulator(dst)]
    assert not bad, bad
    lazy = [dst for dst, _ in graph()["go1o4.robot_runtime.session_cli"]]
    assert any(simulator(d) for d in lazy)  # it does start a simulated Go1, lazily


def test_no_import_cycle():
    g = graph()
    edges = {src: {dst for dst, _ in targets if dst != src} for src, targets in g.items()}
    # a package's __init__ importing its own submodules is not a circle between modules
    for src in edges:
        edges[src] = {d for d in edges[src] if not (src.startswith(d + ".") and d in g)}
    found = cycles(edges)
    assert not found, "import cycles: %s" % found


@pytest.mark.parametrize("src,dst,bad", [
    ("go1o4.offline_finetune.evidence", "go1o4.online_finetune.pipeline", True),
    ("go1o4.offline_finetune.train", "go1o4.robot_runtime.session", True),
    ("go1o4.data.reader", "go1o4.sim_pretrain.physics", True),
    ("go1o4.robot_runtime.sdk_link", "go1o4.robot_runtime.simulated_go1.server", True),
    ("go1o4.robot_runtime.sdk_link", "go1o4.robot_runtime.wire", False),
    ("go1o4.robot_runtime.simulated_go1.server", "go1o4.robot_runtime.wire", False),
    ("go1o4.online_finetune.trainer", "go1o4.offline_finetune.train", False),
    ("go1o4.contract", "go1o4.data.reader", True),
])
def test_the_rule_itself(src, dst, bad):
    assert (upward(src, dst) is not None) == bad


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
