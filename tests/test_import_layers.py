"""The docs' layering holds: no import cycle, no import from a lower room to a higher one.

Every ``import`` in ``platform/liwi`` counts, also the lazy ones inside functions, except
``if TYPE_CHECKING:`` blocks (never executed). Rooms, low to high, as in
``docs/architecture.md``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[1] / "platform"

ROOMS: list[list[str]] = [
    [  # 0: light
        "liwi.__init__",
        "liwi.atomic",
        "liwi.layers",
        "liwi.imageio",
        "liwi.schema",
        "liwi.lake",
        "liwi.table",
        "liwi.config",
        "liwi.paths",
        "liwi.layer_export",
        "liwi.layer_pack",
        "liwi.chat",
        "liwi.weights",
        "liwi.edits",
        "liwi.devices",
        "liwi.stop_signals",
    ],
    [  # 1: tools, the model, the only MLflow callers; heavy imports inside functions
        "liwi.tools",
        "liwi.model",
        "liwi.synth",
        "liwi.metrics",
        "liwi.losses",
        "liwi.sample_photos",
        "liwi.tracking",
        "liwi.add.curator",
        "liwi.add.recombine",
        "liwi.priors",
    ],
    [  # 2: stages, agents, the predictor and what trains and scores it
        "liwi.add.base",
        "liwi.add.reading",
        "liwi.add.segmenting",
        "liwi.add.stages",
        "liwi.agents",
        "liwi.assembly",
        "liwi.predictor",
        "liwi.decomposers",
        "liwi.training",
        "liwi.evaluation",
    ],
    [  # 3: jobs, serving, the CLI
        "liwi.add",
        "liwi.commands",
        "liwi.cli",
        "liwi.serving",
        "liwi.serving.rollout",  # light: pins the served model, re-deploys over REST
        "liwi.serving.loaded",  # what a model replica serves (no Ray)
        "liwi.submit",
        "liwi.testing",
    ],
]
# The one upward arrow allowed: MLflow's pyfunc wrapper loads the Predictor in a method;
# the predictor imports the registry, never the wrapper.
ALLOWED = {("liwi.tracking.pyfunc", "liwi.predictor")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PLATFORM).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of ``modules`` that ``path`` imports (anywhere but TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for n in ast.walk(node)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {"liwi.__init__" if n == "liwi" else n for n in names} & modules
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PLATFORM.rglob("*.py")}
    files["liwi.__init__"] = files.pop("liwi")
    names = set(files)
    return {m: imports(p, names) - {m} for m, p in files.items()}


def room(module: str) -> int:
    best = (-1, -1)
    for level, prefixes in enumerate(ROOMS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = (level, len(prefix))
    assert best[0] >= 0, f"{module} is in no room: add it to ROOMS"
    return best[0]


def test_no_import_runs_upward():
    upward = [
        f"{m} (room {room(m)}) imports {n} (room {room(n)})"
        for m, targets in graph().items()
        for n in targets
        if room(n) > room(m) and (m, n) not in ALLOWED
    ]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle():
    edges = graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " → ".join(path[path.index(node) :] + [node]))
        if node in done:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for module in sorted(edges):
        visit(module, [])


def test_the_predictor_loads_without_mlflow_or_the_pyfunc_wrapper():
    code = (
        "import sys, liwi.predictor, liwi.tracking;"
        "assert 'liwi.tracking.pyfunc' not in sys.modules, 'pyfunc loaded';"
        "assert 'mlflow' not in sys.modules, 'mlflow loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_pyfunc_class_keeps_its_pickled_name():
    from liwi import tracking

    cls = tracking.LiwiPyfuncModel
    assert (cls.__module__, cls.__qualname__) == ("liwi.tracking", "LiwiPyfuncModel")
    assert tracking.LiwiPyfuncModel is cls
