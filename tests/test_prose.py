"""The notebooks' prose agrees with their outputs: every precise figure a markdown cell states
is printed by some notebook's committed outputs or stored in a committed benchmark result.

A *figure* here is a number written with a thousands separator or decimals (`1,637`,
`11.17`), or a number of three digits or more followed by a unit (`852 frames/s`). Round
figures said to be approximate (`about 700 frames/s`) may differ by 5% from the value they
approximate. Numbers in code, LaTeX, links and exercise solutions are not prose. Integers
without a unit and figures worked by hand are out of reach of this check: the first are read
with the outputs, the second are listed in `WORKED_BY_HAND` with where they come from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.common import RESULTS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

UNIT = (
    r"\s?(?:frames/s|frames|micro-batches/s|micro-batches|s|ms|%|MiB|min|minutes|seconds"
    r"|episodes|games|updates)(?![\w/-])"
)
PRECISE = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+"
FIGURE = re.compile(
    rf"(?<![\w.,$/^_-])(about |some |~)?[-−]?((?:{PRECISE})(?!\d)|\d{{3,}}(?={UNIT}))"
)
NOT_PROSE = (r"```.*?```", r"`[^`]*`", r"\$\$.*?\$\$", r"\$[^$]*\$", r"<details>.*?</details>")
ARXIV = re.compile(r"\b\d{4}\.\d{4,5}\b")

WORKED_BY_HAND = {
    "02_network": {
        "3,136": "64 x 7 x 7, the conv trunk's output size, from the layer arithmetic shown",
        "3.3": "millions of parameters, from count_parameters' exact figure printed beside it",
    },
    "03_nstep_experience": {
        figure: "the n-step table worked by hand for gamma = 0.5"
        for figure in ("0.25", "0.125", "1.5", "3.75")
    }
    | {
        "0.97": "gamma ** 3 for gamma = 0.99, rounded",
        "0.98": "gamma ** 2 for gamma = 0.99, rounded",
        "0.03": "the untrained bootstrap, -0.0299 printed, rounded",
        "108,000": "ale-py's max_num_frames_per_episode, gym.spec('PongNoFrameskip-v4').kwargs",
    },
    "04_a2c_loss": {
        "0.97": "gamma ** 3 for gamma = 0.99",
        "0.98": "gamma ** 2",
        "300,000": "exercise 3's own frame budget, set in its code",
        "2.11": "the torch version in a2c_value_coef.json's machine field (a string there)",
    },
    "07_three_designs": {
        "20,000": "quick mode's max_frames, set in the live section's code",
        "589,696": "learning_pong_designs.json: data's 3,606,144 frames less the start's 3,016,448",
        "663,040": "learning_pong_designs.json: Hogwild's 3,679,488 less the start's 3,016,448",
    },
    "08_beyond_one_machine": {
        "100,000": "the frame count at which the live run kills a worker (KILL_AT, in its code)",
        "5,000": "KILL_AT in quick mode, in the same code",
        "40,000": "quick mode's max_frames, set in the live section's code",
    },
}
"""Figures derived in the prose itself, by notebook: each with where it comes from."""


def prose_figures(markdown: str) -> Iterator[tuple[str, bool]]:
    """(figure, said to be approximate) for each figure in a markdown cell's prose."""
    for pattern in NOT_PROSE:
        markdown = re.sub(pattern, " ", markdown, flags=re.S)
    markdown = ARXIV.sub(" ", re.sub(r"\]\([^)]*\)", "]", markdown))
    for m in FIGURE.finditer(markdown):
        yield m.group(2), bool(m.group(1))


def outputs_text(path: Path) -> str:
    nb = json.loads(path.read_text())
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts).replace("−", "-")


def json_numbers(data: object) -> set[float]:
    """Every number in a result's JSON, but for long lists (each episode's score)."""
    numbers: set[float] = set()

    def walk(x: object) -> None:
        if isinstance(x, bool):
            return
        if isinstance(x, int | float):
            numbers.add(float(x))
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list) and len(x) <= 20:
            for v in x:
                walk(v)

    walk(data)
    return numbers


def result_files() -> dict[str, set[float]]:
    """The numbers of each committed result file, by its name without .json."""
    return {p.stem: json_numbers(json.loads(p.read_text())) for p in RESULTS.glob("*.json")}


def numbers_in(text: str) -> set[float]:
    return {
        float(m.group().replace(",", ""))
        for m in re.finditer(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", text)
    }


BLOCKS = (r"```.*?```", r"\$\$.*?\$\$", r"<details>.*?</details>")
SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z(*>|-])|\n\s*\n")
NAMED_RESULT = re.compile(r"([\w-]+)\.json")


def unbacked_figures(
    markdown_cells: list[str],
    own_output: str,
    all_outputs: str,
    results: dict[str, set[float]],
    by_hand: dict[str, str],
) -> list[str]:
    """The figures of a notebook's prose that nothing backs.

    A precise figure must be printed by a notebook or held by a committed result. A figure said
    to be approximate ("about 700 frames/s") must be within 5% of a number this notebook's own
    outputs print, or of a number in a result file its sentence names (`name.json`).
    """
    own, printed = numbers_in(own_output), numbers_in(all_outputs)
    every_result = set().union(*results.values()) if results else set()
    missing = []
    for markdown in markdown_cells:
        for block in BLOCKS:  # removed before the sentences are found: they span several
            markdown = re.sub(block, " ", markdown, flags=re.S)
        for sentence in SENTENCE_END.split(markdown):
            named = set().union(*(results.get(n, set()) for n in NAMED_RESULT.findall(sentence)))
            for figure, approximate in prose_figures(sentence):
                if figure in by_hand:
                    continue
                value = float(figure.replace(",", ""))
                if approximate:
                    if any(abs(abs(x) - value) <= 0.05 * value for x in own | named):
                        continue
                else:
                    if re.search(rf"(?<![\d.,]){re.escape(figure)}(?!\d)", all_outputs):
                        continue
                    if "." not in figure and value in printed:  # printed as 521408
                        continue
                    decimals = len(figure.split(".")[1]) if "." in figure else 0
                    # prose writes a sign apart from its figure
                    if any(round(abs(x), decimals) == value for x in every_result):
                        continue
                missing.append(("about " if approximate else "") + figure)
    return missing


@pytest.fixture(scope="module")
def shown() -> tuple[str, dict[str, set[float]]]:
    return "\n".join(outputs_text(p) for p in NOTEBOOKS), result_files()


def test_the_figure_pattern_finds_what_prose_states():
    text = (
        "It ran at 1,637 frames/s, about 700 frames/s, a mean of 11.17 after 852 frames/s; "
        "`--lr 0.003` and $\\gamma = 0.99$ are not prose, nor is arXiv:1602.01783, nor 84 or 2016."
    )
    assert list(prose_figures(text)) == [
        ("1,637", False),
        ("700", True),
        ("11.17", False),
        ("852", False),
    ]


def test_an_approximate_figure_must_be_this_notebooks_output_or_a_named_results():
    """ "about 700" backed by 690 in another notebook's output, or in a result file that the
    sentence does not name, is a figure nothing in its place backs."""
    results = {"runs_a": {690.0}, "runs_b": {10.0}}
    cells = ["It ran at about 700 frames/s. It took about 10 s (`runs_b.json`)."]
    elsewhere = "another notebook printed 690 frames/s"
    assert unbacked_figures(cells, "", elsewhere, results, {}) == ["about 700"]
    assert unbacked_figures(cells, "steady: 690 frames/s", elsewhere, results, {}) == []
    named = ["It ran at about 700 frames/s (`runs_a.json`)."]
    assert unbacked_figures(named, "", "", results, {}) == []
    # a precise figure may come from any output or result, as before
    assert unbacked_figures(["Its mean was 11.17."], "", "mean 11.17", {}, {}) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_figure_in_the_prose_is_printed_or_committed(path, shown):
    all_outputs, results = shown
    nb = json.loads(path.read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    by_hand = WORKED_BY_HAND.get(path.stem, {})
    missing = unbacked_figures(cells, outputs_text(path), all_outputs, results, by_hand)
    assert not missing, (
        f"{path.name} states figures that no output prints and no committed result holds: "
        f"{missing}. Quote what a cell prints (or a file in benchmarks/results); an "
        "approximate figure must be this notebook's own output or in a result file its "
        "sentence names (`name.json`); or list a figure worked by hand in WORKED_BY_HAND."
    )


PRINTED_SOURCE = re.compile(r"^print\(inspect\.getsource\(([\w.]+)\)\)$", re.M)


def _imports_of(nb: dict) -> dict:
    """The names a notebook's import statements bind, imported here."""
    import ast

    namespace: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # a cell with an IPython magic
            continue
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        try:
            exec(compile(ast.Module(imports, type_ignores=[]), "<imports>", "exec"), namespace)
        except ModuleNotFoundError as exc:
            if exc.name != "ray":
                raise
            # the optional extra: `make test` has it, `make test-min` (the lowest versions) not
            pytest.skip(
                "this notebook imports Ray, the `distributed` extra, which is not installed"
            )
    return namespace


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_source_a_notebook_prints_is_the_code_in_lib(path):
    """A cell that prints a `lib` function's source shows the code as it is now: a change to
    `lib` must be followed by re-executing the notebooks that print it."""
    import inspect

    nb = json.loads(path.read_text())
    namespace = _imports_of(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        printed = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
        for name in PRINTED_SOURCE.findall("".join(cell["source"])):
            source = inspect.getsource(eval(name, namespace))
            assert source in printed, (
                f"{path.name} prints the source of {name}, but its committed output is not the "
                "code in lib now: re-execute the notebook (python -m benchmarks.notebook_times "
                f"{path.relative_to(ROOT)})"
            )
