"""Project hygiene: pins in one place, the two quick-start commands, CI calls `make test`."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_dependency_is_pinned_exactly():
    project = pyproject()["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.]*", d) for d in deps), deps
    assert "torch==2.13.0" in deps


def test_environment_yml_has_the_same_pins_as_pyproject():
    pins = set(pyproject()["project"]["dependencies"])
    text = (ROOT / "environment.yml").read_text()
    pip_lines = {m.group(1) for m in re.finditer(r"^\s+- ([A-Za-z0-9_.\-]+==\S+)$", text, re.M)}
    assert pip_lines == pins
    assert re.search(r"^\s+- python=3\.11$", text, re.M)


def test_no_forbidden_packages():
    text = (ROOT / "pyproject.toml").read_text() + (ROOT / "environment.yml").read_text()
    for name in ("ptan", "tensorboardX", "autorom", '"gym=='):
        assert name.lower() not in text.lower()


def test_quick_start_has_the_two_commands_and_ci_runs_make_test():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)$", quick, re.M)
    assert commands == ["make train", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("train:", "test:", "lab:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target
