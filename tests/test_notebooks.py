"""Every notebook runs top to bottom in quick mode, calls `lib` instead of copying it, and
notebook 05 trains with the very function the command line uses."""

from __future__ import annotations

import ast
import inspect
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

import lib.train
from benchmarks.common import RESULTS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_PATHS = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if p.name[:2] != "00")
"""The lessons: notebook 00 is the glossary, markdown only (tests/test_exercises.py checks it)."""
CELL_TIMEOUT = 300


def notebook_ids() -> list[str]:
    return [p.stem for p in NOTEBOOK_PATHS]


def code_of(path: Path) -> ast.Module:
    """The notebook's code cells as one Python module (magics turned into plain calls)."""
    nb = nbformat.read(path, as_version=4)
    transform = TransformerManager().transform_cell
    source = "\n".join(transform(c.source) for c in nb.cells if c.cell_type == "code")
    return ast.parse(source, filename=str(path))


def lib_definitions() -> set[str]:
    """Names of every top-level function and class defined in lib/*.py."""
    names = set()
    for module in (ROOT / "lib").glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
    return names


def calls_to(tree: ast.AST, module: str, name: str) -> list[ast.Call]:
    """Calls of `module.name`: as `module.name(...)` or after `from module import name`."""
    imported = any(
        isinstance(node, ast.ImportFrom)
        and node.module == module
        and any(alias.name == name and alias.asname in (None, name) for alias in node.names)
        for node in ast.walk(tree)
    )
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == name:
            if ast.unparse(func.value) == module:
                found.append(node)
        elif isinstance(func, ast.Name) and func.id == name and imported:
            found.append(node)
    return found


def test_the_course_has_notebooks_one_to_five():
    stems = notebook_ids()
    for prefix in ("01_", "02_", "03_", "04_", "05_"):
        assert any(s.startswith(prefix) for s in stems), f"no notebook {prefix}*.ipynb"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=notebook_ids())
def test_notebook_does_not_redefine_lib(path):
    defined = {
        node.name
        for node in ast.walk(code_of(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    clashes = defined & lib_definitions()
    assert not clashes, f"{path.name} defines {sorted(clashes)}; import them from lib instead"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=notebook_ids())
def test_notebook_imports_lib_and_has_the_skeleton(path):
    tree = code_of(path)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {a.name for n in imports if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in imports if isinstance(n, ast.ImportFrom)}
    assert any(m == "lib" or m.startswith("lib.") for m in modules)
    assert calls_to(tree, "lib", "quick_mode"), "the notebook must honour A3C_QUICK"
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    for heading in ("you will learn", "## summary", "## exercises"):
        assert heading in text.lower(), f"{path.name} lacks '{heading}'"


def test_notebook_05_trains_with_the_function_the_cli_uses():
    (nb05,) = [p for p in NOTEBOOK_PATHS if p.stem.startswith("05_")]
    calls = calls_to(code_of(nb05), "lib.a3c", "train")
    assert calls, "notebook 05 must call lib.a3c.train"
    assert any(kw.arg == "callback" for call in calls for kw in call.keywords)
    main = ast.parse(inspect.getsource(lib.train.main))
    assert calls_to(main, "lib.a3c", "train"), "lib.train.main no longer calls lib.a3c.train"


def _outputs_of(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=notebook_ids())
def test_committed_notebook_is_small_and_renders_on_github(path):
    nb = nbformat.read(path, as_version=4)
    assert path.stat().st_size < 2_000_000, f"{path.name} is {path.stat().st_size:,} bytes"
    assert "widgets" not in nb.metadata, "widget state does not render on GitHub"
    outputs = _outputs_of(nb)
    assert outputs, f"{path.name} was committed without outputs"
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} has errors"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no picture"
    for o in outputs:
        assert "application/vnd.jupyter.widget-view+json" not in o.get("data", {})


MARKER = """
import os as _os
if _os.environ.get("A3C_IMPORT_MARKERS"):  # added by tests/test_notebooks.py to this copy only
    with open(_os.path.join(_os.environ["A3C_IMPORT_MARKERS"], str(_os.getpid())), "w") as _f:
        _f.write(__file__)
"""


@pytest.fixture(scope="module")
def course_copy(tmp_path_factory):
    """A copy of the course that is not pip-installed anywhere, as a student's download is.
    Its lib/__init__.py notes which file each process imported lib from."""
    root = tmp_path_factory.mktemp("course") / "a3c-course"
    skip = shutil.ignore_patterns(".*", "runs", "__pycache__", "*.egg-info", "checkpoints")
    for name in ("lib", "notebooks", "benchmarks"):
        shutil.copytree(ROOT / name, root / name, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", root)
    with open(root / "lib" / "__init__.py", "a") as f:
        f.write(MARKER)
    return root


def executed() -> list:
    """The lessons to execute; one that starts Ray is marked `ray` (pyproject.toml: markers)."""
    return [
        pytest.param(p, id=p.stem, marks=[pytest.mark.ray] if "import ray" in p.read_text() else [])
        for p in NOTEBOOK_PATHS
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", executed())
def test_notebook_executes_in_quick_mode(path, course_copy, tmp_path, monkeypatch):
    """Run each notebook in a copy of the course that is not installed (the committed file
    and its outputs are never touched): its first cell must find the copy's lib, and so must
    every worker it spawns."""
    monkeypatch.setenv("A3C_QUICK", "1")
    monkeypatch.setenv("A3C_IMPORT_MARKERS", str(tmp_path))
    committed = path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(course_copy / "notebooks")}},
    )
    start = time.monotonic()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    print(f"{path.name}: {time.monotonic() - start:.1f} s in quick mode")
    assert path.read_bytes() == committed
    outputs = _outputs_of(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    imported_from = {m.name: m.read_text() for m in tmp_path.iterdir()}
    assert imported_from, "the kernel never imported lib"
    assert all(f.startswith(str(course_copy / "lib")) for f in imported_from.values())
    if calls_to(code_of(path), "lib.a3c", "train"):  # notebook 05 trains with workers
        assert len(imported_from) >= 2, "no spawned worker imported the copy's lib"


ASSETS = NOTEBOOKS / "assets"


def test_committed_pong_agent_loads_and_is_small():
    """The trained Pong agent that notebook 05 shows to readers who cannot train one."""
    import json

    import torch

    from lib.checkpoint import load_checkpoint, load_model
    from lib.model import NETWORKS

    path = ASSETS / "pong_a3c.pt"
    assert path.stat().st_size <= 7 * 2**20
    state = load_checkpoint(path)
    assert all(v.dtype == torch.float16 for v in state["model"].values())
    net, config = load_model(path)
    assert isinstance(net, NETWORKS[config.net]) and config.env_id == "PongNoFrameskip-v4"
    logits, value = net(torch.zeros(2, *state["obs_shape"], dtype=torch.uint8))
    assert logits.shape == (2, state["n_actions"]) and value.shape == (2, 1)
    # the best moment of the committed run: an agent that wins more points than it loses
    run = json.loads((RESULTS / "learning_pong_fast_cpu.json").read_text())["runs"][0]
    assert state["best_mean_score"] == run["summary"]["best_mean_score"] > 0


def test_committed_pong_gif_and_curve_parse():
    import json

    from PIL import Image

    with Image.open(ASSETS / "pong_a3c.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames > 100 and gif.size[0] >= 80
    run = json.loads((RESULTS / "learning_pong_fast_cpu.json").read_text())["runs"][0]
    points = run["points"]
    assert [p["frames"] for p in points] == sorted(p["frames"] for p in points)
    assert [p["seconds"] for p in points] == sorted(p["seconds"] for p in points)
    assert points[0]["mean"] < -19 and points[-1]["mean"] > 0  # Pong learned, from a random start
    assert (
        run["config"]["preset"] == "pong-fast" and run["summary"]["frames"] >= points[-1]["frames"]
    )


ALL_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
NO_ALT = "No description has been provided"


def _html(path: Path, template: str) -> str:
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name=template).from_notebook_node(
        nbformat.read(path, as_version=4)
    )
    return html


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=[p.stem for p in ALL_NOTEBOOKS])
def test_html_export_keeps_every_picture_and_gives_it_alt_text(path):
    """`jupyter nbconvert --to html` must show what JupyterLab and GitHub show: an output that
    only an object's repr stands for (an `image/gif` bundle, a widget) is a lost picture. The
    classic template writes each figure cell's `alt` metadata into its <img>."""
    import re

    nb = nbformat.read(path, as_version=4)
    figures = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and any(k.startswith("image/") for o in c.get("outputs", []) for k in o.get("data", {}))
    ]
    pictures = sum(
        k.startswith("image/") for c in figures for o in c.outputs for k in o.get("data", {})
    )
    linked = [
        m for c in nb.cells if c.cell_type == "markdown" for m in re.findall(r"!\[", c.source)
    ]
    html = {template: _html(path, template) for template in ("lab", "classic")}
    for template, page in html.items():
        assert "IPython.core.display" not in page, f"{path.name} ({template}) lost an output"
        imgs = re.findall(r"<img\b[^>]*>", page)
        assert len(imgs) >= pictures + len(linked), (path.name, template, len(imgs), pictures)
        for gif in re.findall(r"\(([^)\s]+\.gif)\)", "\n".join(c.source for c in nb.cells)):
            assert any(gif in img for img in imgs), f"{gif} is not an <img> in {path.name}"
    missing = [i for i, c in enumerate(nb.cells) if c in figures and not c.metadata.get("alt")]
    assert not missing, f"{path.name}: figure cells {missing} have no `alt` metadata"
    # nbconvert puts a stock "No description has been provided" where an <img> has no alt
    undescribed = [img for img in re.findall(r"<img\b[^>]*>", html["classic"]) if NO_ALT in img]
    assert not undescribed, f"{path.name}: {len(undescribed)} pictures without alt text"
