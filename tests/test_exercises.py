"""The learner aids in the notebooks stay true: every worked solution still runs against today's
`lib`, and every aided notebook keeps its "You will learn" box, its glossary link and its quiz.

A solution is a ```python block inside a <details> block of a markdown cell. Nothing executes
markdown, so without this test a change to `lib` could break a solution and no one would know
until a student pasted it into a cell.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
GLOSSARY = NOTEBOOKS / "00_glossary.ipynb"
NUMBERED = [p for p in NOTEBOOK_PATHS if p != GLOSSARY]
SOLUTION_TIMEOUT = 300  # the heaviest (04, six short CartPole runs) took 94 s of CPU time

# The notebooks with learner aids: every lesson.
AIDED = ("01", "02", "03", "04", "05", "06", "07", "08")

DETAILS = re.compile(r"<details>(.*?)</details>", re.DOTALL)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def markdown_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def solutions() -> list[tuple[str, str]]:
    """(id, code) of every ```python block inside a <details> block, notebook by notebook."""
    found = []
    for path in NOTEBOOK_PATHS:
        blocks = [
            code
            for text in markdown_cells(path)
            for details in DETAILS.findall(text)
            for code in PYTHON_BLOCK.findall(details)
        ]
        found += [(f"{path.stem}:{i}", code) for i, code in enumerate(blocks)]
    return found


SOLUTIONS = solutions()


def test_there_are_solutions_to_run():
    """A broken pattern would find nothing and every parametrized test below would vanish."""
    aided = {sid.split("_")[0] for sid, _ in SOLUTIONS}
    assert set(AIDED) <= aided, f"no solutions found in notebooks {sorted(set(AIDED) - aided)}"


@pytest.mark.slow
@pytest.mark.parametrize("code", [c for _, c in SOLUTIONS], ids=[i for i, _ in SOLUTIONS])
def test_solution_runs(code, tmp_path):
    """Each solution is self-contained: a fresh interpreter in the repository root running it
    as a script file, as a student would (a spawned child re-imports that file, so a solution
    that starts processes needs its `__main__` guard), in quick mode and with no display."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "A3C_QUICK": "1", "MPLBACKEND": "Agg"}
    script = tmp_path / "solution.py"
    script.write_text(code)
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=SOLUTION_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the solution ran longer than {SOLUTION_TIMEOUT} s: {e.stderr!r:.2000}")
    assert done.returncode == 0, f"exit code {done.returncode}:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), "a solution must print what the reader should see"


def test_aided_notebooks_exist():
    """A notebook renamed away from AIDED would otherwise drop out of the checks below."""
    prefixes = {p.name[:2] for p in NUMBERED}
    assert set(AIDED) <= prefixes, f"no notebook for {sorted(set(AIDED) - prefixes)}"


@pytest.mark.parametrize(
    "path",
    [p for p in NUMBERED if p.name[:2] in AIDED],
    ids=[p.stem for p in NUMBERED if p.name[:2] in AIDED],
)
def test_notebook_has_its_learner_aids(path):
    """A box of goals right after the title, a link to the glossary, and a quiz whose answers
    are hidden until the reader asks for them."""
    cells = markdown_cells(path)
    assert cells[0].startswith("# "), f"{path.name} must start with its title"
    assert cells[1].startswith("> **You will learn**"), "the box must follow the title"
    assert "> **Run time:**" in cells[1], f"{path.name}: the box must say how long a run takes"
    text = "\n".join(cells)
    assert "(00_glossary.ipynb)" in text, f"{path.name} does not link to the glossary"
    (quiz,) = [c for c in cells if c.startswith("## Check yourself")]
    answers = [d for d in DETAILS.findall(quiz) if "<summary>Answer</summary>" in d]
    assert len(answers) >= 3, f"{path.name}: {len(answers)} answers under 'Check yourself'"
    exercises = [c for c in cells if c.startswith("## Exercises")]
    assert exercises and "<summary>Solution</summary>" in exercises[0]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_details_blocks_render_their_markdown(path):
    """GitHub, JupyterLab and nbconvert render markdown inside <details> only after a blank
    line; without it the reader sees raw ``` fences and asterisks."""
    for text in markdown_cells(path):
        assert text.count("<details>") == text.count("</details>"), f"{path.name}: unclosed"
        for details in DETAILS.findall(text):
            assert re.search(r"</summary>\n\n", details), f"{path.name}: {details[:80]!r}"


def test_glossary_is_markdown_in_alphabetical_order():
    """The glossary is read, never run, and a reader looks a word up by its place."""
    cells = json.loads(GLOSSARY.read_text(encoding="utf-8"))["cells"]
    assert {c["cell_type"] for c in cells} == {"markdown"}
    texts = ["".join(c["source"]) for c in cells]
    assert texts[0].startswith("# 00 · Glossary")
    terms = [t[3:].split("\n")[0] for t in texts[1:] if t.startswith("## ")]
    terms = [t for t in terms if t != "References"]
    assert len(terms) >= 10
    assert terms == sorted(terms, key=str.lower), terms


def test_the_glossary_and_readme_set_the_three_designs_side_by_side():
    """One short table each, a row per `--variant` value."""
    head = "".join(json.loads(GLOSSARY.read_text(encoding="utf-8"))["cells"][0]["source"])
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    for text in (head, readme):
        rows = [line for line in text.splitlines() if line.startswith("| ")]
        for variant in ("`data`", "`grad`", "`hogwild`"):
            assert sum(variant in row for row in rows) == 1, (variant, rows)


ASSERTION = re.compile(r"^\s*assert\b", re.M)
EXPECTED = re.compile(r"```\s*\n\s*Expected:")


def test_every_solution_states_and_asserts_its_expected_result():
    """Each solution says what the reader should see ("Expected: ..." right after its code) and
    asserts it, so that running it (test_solution_runs) checks the answer, not only the code."""
    unchecked = [sid for sid, code in SOLUTIONS if not ASSERTION.search(code)]
    assert not unchecked, f"solutions that assert nothing: {unchecked}"
    unstated = [
        f"{path.stem}: {details[:60]!r}"
        for path in NOTEBOOK_PATHS
        for text in markdown_cells(path)
        for details in DETAILS.findall(text)
        if PYTHON_BLOCK.search(details) and not EXPECTED.search(details)
    ]
    assert not unstated, f"solutions with no 'Expected:' after their code: {unstated}"


BUDGETS = {"core": 2_000, "systems": 2_500, "all": 16_000}
"""Words of markdown: each of 01-05 (the core track), each of 06-08 (the systems track), and
01-08 together. The README's budget is checked in test_project."""


def test_every_notebook_keeps_its_word_budget():
    words = {p.stem: sum(len(t.split()) for t in markdown_cells(p)) for p in NUMBERED}
    over = {
        stem: n
        for stem, n in words.items()
        if n > BUDGETS["core" if int(stem[:2]) <= 5 else "systems"]
    }
    assert not over, (
        f"over budget: {over} (core track {BUDGETS['core']}, systems {BUDGETS['systems']})"
    )
    assert sum(words.values()) <= BUDGETS["all"], f"{sum(words.values())} words in all"
