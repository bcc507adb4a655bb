"""Project hygiene: ranges in pyproject, exact pins in the lock, the quick-start commands, CI."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

# pytest depends on `packaging`, so it is there wherever the tests run.
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.]*")


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def ranges(group="all"):
    """pyproject's requirements by canonical name: `dependencies`, an extra (`test`,
    `distributed`), or all of them."""
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    lines = {
        "runtime": project["dependencies"],
        "test": extras["test"],
        "distributed": extras["distributed"],
        "all": project["dependencies"] + extras["test"] + extras["distributed"],
    }[group]
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in reqs}


def pins(filename):
    """The `name==version` lines of a pip requirements file, by canonical name."""
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / filename).read_text().splitlines()]
    lines = [line for line in lines if line]
    assert all(PIN.fullmatch(line) for line in lines), lines
    reqs = [Requirement(line) for line in lines]
    by_name = {canonicalize_name(r.name): r for r in reqs}
    assert len(by_name) == len(reqs), f"{filename} names a package twice"
    return {name: Version(next(iter(r.specifier)).version) for name, r in by_name.items()}


def lower_bound(req):
    (bound,) = [s.version for s in req.specifier if s.operator == ">="]
    return Version(bound)


def test_pyproject_has_ranges_with_a_lower_bound_and_no_exact_pin():
    reqs = ranges()
    for name, req in reqs.items():
        assert req.specifier, f"{name} has no version range"
        assert {s.operator for s in req.specifier} <= {">=", "<"}, req
        lower_bound(req)
    assert str(reqs["torch"].specifier) == ">=2.13"  # the only torch tried (requirements-min)


def test_the_lock_pins_exactly_what_pyproject_names_within_its_ranges():
    reqs, locked = ranges(), pins("requirements.lock")
    assert set(locked) == set(reqs)
    for name, version in locked.items():
        assert reqs[name].specifier.contains(version, prereleases=True), (name, version)
    assert locked["torch"] == Version("2.13.0")  # what `make` installs


def test_requirements_min_pins_the_lower_bounds():
    """`make test-min` tries every lower bound of the core course and its tests (not the Ray
    backend's: it leaves out tests/test_ray.py)."""
    reqs, lowest = ranges(), pins("requirements-min.txt")
    for name in ranges("distributed"):
        del reqs[name]
    assert set(lowest) == set(reqs)
    for name, version in lowest.items():
        assert reqs[name].specifier.contains(version, prereleases=True), (name, version)
        assert version == lower_bound(reqs[name]), (name, version)


def test_environment_yml_has_the_runtime_pins_of_the_lock():
    locked = pins("requirements.lock")
    runtime = {f"{name}=={locked[name]}" for name in ranges("runtime")}
    text = (ROOT / "environment.yml").read_text()
    pip_lines = re.findall(r"^\s+- ([A-Za-z0-9_.\-]+==\S+)$", text, re.M)
    assert {str(Requirement(line)) for line in pip_lines} == {str(Requirement(r)) for r in runtime}
    assert re.search(r"^\s+- python=3\.11$", text, re.M)
    assert re.search(r"^\s+- -e \.$", text, re.M)


def test_make_installs_the_lock_and_ci_tries_the_lowest_versions():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(STAMP\): pyproject\.toml requirements\.lock$", makefile, re.M)
    assert "pip install --quiet -r requirements.lock -e '.[test,distributed]'" in makefile
    assert "--ignore=tests/test_ray.py" in makefile.split("\ntest-min:", 1)[1]
    assert re.search(r"^test-min:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert ci.index("make test\n") < ci.index("make test-min\n")


def test_make_refuses_a_python_older_than_pyproject_allows_before_making_a_venv(tmp_path):
    """The check runs before `venv`, so no venv of the wrong Python is left for a retry to keep
    (`venv` over an existing folder keeps its interpreter). Raising the minimum stands in for an
    old interpreter; the real minimum is pyproject's."""
    makefile = (ROOT / "Makefile").read_text()
    (minimum,) = re.findall(r"^PYTHON_MIN := (\S+)$", makefile, re.M)
    assert pyproject()["project"]["requires-python"] == f">={minimum}"
    venv = tmp_path / "venv"
    out = subprocess.run(
        ["make", "-s", "install", "PYTHON_MIN=3.99", f"VENV={venv}", f"PYTHON={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    version = ".".join(map(str, sys.version_info[:3]))
    assert f"is Python {version}; the course needs 3.99 or newer" in out.stderr, out.stderr
    assert "PYTHON=python3.99" in out.stderr
    assert not venv.exists()


def test_make_test_runs_two_at_a_time_and_the_ray_tests_alone_after():
    """Ray gives a starting node 30 s to register, which a busy 2-core machine can miss."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    rest, ray = re.findall(r"-m pytest (.*?); \w+=\$\$\?", recipe)
    assert '-n $(TEST_WORKERS) -m "not ray"' in rest and "-n" not in ray.split()
    assert ray.endswith("-m ray") and recipe.index(rest) < recipe.index(ray)
    assert re.search(r"^TEST_WORKERS \?= 2$", makefile, re.M)


def test_no_forbidden_packages():
    files = ("pyproject.toml", "environment.yml", "requirements.lock", "requirements-min.txt")
    text = "".join((ROOT / name).read_text() for name in files)
    for name in ("ptan", "tensorboardX", "autorom", '"gym=='):
        assert name.lower() not in text.lower()
    for names in (ranges(), pins("requirements.lock"), pins("requirements-min.txt")):
        assert "gym" not in names  # the old package, not gymnasium


def test_quick_start_has_the_two_commands_and_ci_runs_make_test():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)$", quick, re.M)
    assert commands == ["make train", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("train:", "test:", "lab:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target


README_WORDS = 2500  # quick start, what to expect, the notebooks, install notes; the rest in docs/
DOCS_LINK = re.compile(r"\]\(((?:\.\./)?[\w./-]+\.md)(?:#[^)]*)?\)")


def test_readme_fits_its_word_budget_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    words = len(readme.split())
    assert words <= README_WORDS, f"README.md has {words} words, over its budget of {README_WORDS}"
    linked = {link for link in DOCS_LINK.findall(readme) if link.startswith("docs/")}
    missing = sorted(link for link in linked if not (ROOT / link).is_file())
    assert not missing, f"README.md links to docs pages that do not exist: {missing}"
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    unlinked = sorted(pages - linked)
    assert not unlinked, f"docs pages the README does not link to: {unlinked}"


def test_readme_states_the_pong_fast_solves_of_its_results_file():
    """The README's frames to solve for `make train` are the runs of pong-fast's own settings;
    the median counts an unsolved run as never solving."""
    import math

    from benchmarks.common import load
    from benchmarks.pong_runs import median_frames_to_solve
    from lib import get_preset

    preset = get_preset("pong-fast")
    runs = load("learning_pong_fast_n8_vlc0.5")["runs"]
    runs = [
        r
        for r in runs
        if (r["config"]["reward_steps"], r["config"]["value_loss_coef"])
        == (preset.reward_steps, preset.value_loss_coef)
    ]
    solved = sorted(r["summary"]["frames"] for r in runs if r["solved"])
    median = median_frames_to_solve(runs)
    assert len(runs) >= 3 and math.isfinite(median)
    readme = (ROOT / "README.md").read_text()
    expect = " ".join(readme.split("## What you can expect", 1)[1].split("\n## ", 1)[0].split())
    stated = ", ".join(f"{f / 1e6:.2f}M" for f in solved[:-1]) + f" and {solved[-1] / 1e6:.2f}M"
    assert f"solved after {stated} frames" in expect
    assert f"a median of {median / 1e6:.2f}M" in expect


def test_docs_pages_link_only_to_files_that_exist():
    for page in sorted((ROOT / "docs").glob("*.md")):
        for link in DOCS_LINK.findall(page.read_text()):
            assert (page.parent / link).is_file(), f"{page.name} links to {link}, which is missing"


def _import_lib_in(python_args: list[str], extra_path: str = "") -> subprocess.CompletedProcess:
    code = f"import sys; sys.path[:0] = [{str(ROOT)!r}, {extra_path!r}]; import lib"
    return subprocess.run(
        [sys.executable, *python_args, "-c", code], capture_output=True, text=True, timeout=120
    )


def test_lib_in_an_empty_environment_names_every_package_and_the_install_line():
    # -S: no site-packages at all, as in a fresh environment
    out = _import_lib_in(["-I", "-S"])
    assert out.returncode == 1
    message = out.stderr.strip().splitlines()
    assert any("needs 9 package(s)" in line for line in message), out.stderr
    line = next(x.strip() for x in message if x.strip().startswith("%pip install"))
    assert '"torch>=' in line and '"gymnasium>=' in line and '"ale-py>=' in line


def test_install_line_leaves_packages_that_are_there_alone(tmp_path):
    """torch and numpy present (a hosted service's), the rest missing: only the rest is named."""
    import numpy
    import torch

    for module in (torch, numpy):
        (tmp_path / module.__name__).symlink_to(Path(module.__file__).parent)
    out = _import_lib_in(["-I", "-S"], str(tmp_path))
    assert "needs 7 package(s)" in out.stderr, out.stderr
    line = next(x.strip() for x in out.stderr.splitlines() if x.strip().startswith("%pip"))
    assert "torch" not in line and "numpy" not in line and '"gymnasium>=' in line


def test_lib_imports_cleanly_where_everything_is_installed():
    out = _import_lib_in([])
    assert out.returncode == 0, out.stderr


def test_gpu_wheels_are_the_locked_versions():
    """`make gpu-wheels` fetches gymnasium, ale-py and what executing the notebooks needs at
    the versions `make` installs here, and leaves the GPU machine's own numpy, matplotlib and
    torch alone (their wheels would not fit in one device carry beside the working tree)."""
    target = (ROOT / "Makefile").read_text().split("gpu-wheels:", 1)[1].split("\n\n", 1)[0]
    locked = pins("requirements.lock")
    for name in ("gymnasium", "ale-py"):
        assert f"{name}=={locked[name]}" in target, name
    assert "-r benchmarks/gpu_notebook_wheels.txt" in target
    wanted = pins("benchmarks/gpu_notebook_wheels.txt")
    for name in ("nbclient", "ipykernel", "nbformat"):
        assert wanted[name] == locked[name], name
    assert not {"numpy", "matplotlib", "pillow", "torch"} & set(wanted)


@pytest.mark.parametrize("how", ["packaging", "by release numbers"])
def test_version_ranges_are_read_by_release_numbers(how):
    """With `packaging` (where it is installed) and without it, every operator a requirement
    may use: >=, <, ~= (compatible release) and != as well."""
    from lib.deps import _in_range_by_release
    from lib.deps import in_range as with_packaging

    in_range = with_packaging if how == "packaging" else _in_range_by_release
    assert in_range("1.2.2", "gymnasium>=1.0.0,<2")
    assert not in_range("0.29.1", "gymnasium>=1.0.0,<2")  # the API before 1.0
    assert not in_range("2.0", "gymnasium>=1.0.0,<2")
    assert in_range("2.13.0+cpu", "torch>=2.13")  # a local build label is not a version part
    assert in_range("0.9.0", "ale-py>=0.9.0") and not in_range("0.8.1", "ale-py>=0.9.0")
    assert in_range("1.4.2", "x~=1.4") and in_range("1.9", "x~=1.4")
    assert not in_range("2.0", "x~=1.4") and not in_range("1.3", "x~=1.4")
    assert in_range("1.4.5", "x~=1.4.2") and not in_range("1.5.0", "x~=1.4.2")
    assert not in_range("1.2.0", "x!=1.2.0") and in_range("1.2.1", "x>=1,!=1.2.0")


@pytest.mark.slow
def test_an_old_gymnasium_is_named_with_its_version_and_the_install_line(tmp_path):
    """gymnasium 0.29 imports, then breaks `lib`: the check names it before anything else runs."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(tmp_path)]
        + ["gymnasium==0.29.1"],
        check=True,
        timeout=300,
    )
    code = f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(tmp_path)!r}]; import lib"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "needs 1 package(s)" in out.stderr, out.stderr
    assert "gymnasium>=1.1.0,<2 (0.29.1 is installed)" in out.stderr
    assert '%pip install "gymnasium>=1.1.0,<2"' in out.stderr


def test_the_readmes_reading_times_follow_the_notebooks_words():
    """README's "reading (est.)" column is each notebook's markdown words at 200 a minute,
    rounded: it must follow the notebooks when their prose changes."""
    import json

    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\|[^|]*\| `(\d\d_\w+)` \|.*\| (\d+) min \|$", readme, re.M)
    assert len(rows) == 9, rows
    for stem, minutes in rows:
        cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
        words = sum(
            len("".join(c["source"]).split()) for c in cells if c["cell_type"] == "markdown"
        )
        assert int(minutes) == round(words / 200), (stem, words, minutes)
