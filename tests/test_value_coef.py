"""benchmarks.value_coef: it rebuilds the committed file's rows, and a tiny sweep has its shape."""

import json
import re

import pytest

import benchmarks.common as common
from benchmarks import value_coef

COMMITTED = json.loads((common.RESULTS / "a2c_value_coef.json").read_text())
CELL = ("value_loss_coef", "learning_rate", "reuse_values")


def test_rows_and_run_names_rebuild_the_committed_file():
    for half in ("a2c", "a3c"):
        for committed in COMMITTED[half]["rows"]:
            cell = {k: committed[k] for k in CELL if k in committed}
            records = COMMITTED[half]["runs"][value_coef.run_key(cell)]
            assert value_coef.row(cell, records) == committed


def test_row_by_hand():
    frames, solved, falls = [300, 500, 400, 2_000_128], [True, True, True, False], [0, 2, 1, 3]
    records = [
        {"frames": f, "solved": s, "falls": n}
        for f, s, n in zip(frames, solved, falls, strict=True)
    ]
    assert value_coef.row({"value_loss_coef": 0.5}, records) == {
        "value_loss_coef": 0.5,
        "solved": "3/4",
        "frames to solve (median)": 400,  # of the three that solved
        "frames to solve (min)": 300,
        "frames to solve (max)": 500,
        "falls (all seeds)": 6,  # the unsolved run's falls count too
        "runs with a fall": 3,
    }
    assert value_coef.row({}, records[:2])["frames to solve (median)"] == 400.0


@pytest.mark.slow  # trains, in spawned processes
def test_a_tiny_sweep_in_two_halves_writes_the_committed_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)  # `save` writes here, not into the repo
    frames = 6000
    flags = (
        f"--coef 0.5 --lr 0.002 --reuse-values 1 --seeds 1 --a3c-seeds 1 --max-frames {frames} "
        "--jobs 2 --name tiny"
    ).split()
    kept = {"max_frames": frames, "a3c": COMMITTED["a3c"]}
    (tmp_path / "tiny.json").write_text(json.dumps(kept))
    first = value_coef.main([*flags, "--skip-a3c"])
    assert first["a3c"] == COMMITTED["a3c"]  # the half not run is kept from the file
    value_coef.main([*flags, "--skip-a2c"])
    ours = json.loads((tmp_path / "tiny.json").read_text())
    assert ours["a2c"] == json.loads(json.dumps(first["a2c"]))
    assert ours.keys() == COMMITTED.keys()
    assert ours["fall"] == COMMITTED["fall"]
    assert ours["max_frames"] == frames
    record_keys = next(iter(COMMITTED["a2c"]["runs"].values()))[0].keys()
    batch = 256  # the cartpole preset's: both trainers stop after the update that passes the budget
    for half in ("a2c", "a3c"):
        theirs, mine = COMMITTED[half], ours[half]
        assert mine.keys() == theirs.keys()
        assert mine["machine"].keys() == theirs["machine"].keys()
        assert f"--max-frames {frames}" in mine["command"]
        assert [r.keys() for r in mine["rows"]] == [theirs["rows"][0].keys()]
        # the committed names with their values as patterns match ours
        pattern = re.sub(r"=\S+", r"=\\S+", next(iter(theirs["runs"])))
        assert all(re.fullmatch(pattern, key) for key in mine["runs"])
        [(key, [run])] = mine["runs"].items()
        [row] = mine["rows"]
        assert key == " ".join(f"{k}={row[k]}" for k in CELL if k in row)
        assert row["value_loss_coef"] == 0.5
        assert run.keys() == record_keys
        assert run["seed"] == 0
        # 6,000 frames cannot solve CartPole (100 episodes at 475 take 47,500), nor stand at 300
        assert not run["solved"] and row["solved"] == "0/1"
        assert row["frames to solve (median)"] is None
        assert run["falls"] == 0 and row["falls (all seeds)"] == 0
        assert frames <= run["frames"] < frames + batch and run["frames"] % batch == 0
        assert 8 <= run["last100"] < 475  # a CartPole episode lasts at least 8 steps
        assert 0 < run["episodes"] <= run["frames"] / 8
        assert run["seconds"] > 0
    assert ours["a2c"]["rows"][0]["learning_rate"] == 0.002
    assert ours["a2c"]["rows"][0]["reuse_values"] is True
    [[a2c_run]] = ours["a2c"]["runs"].values()
    assert ours["a2c"]["seconds_total"] >= a2c_run["seconds"]


def test_a_kept_half_must_have_the_same_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    (tmp_path / "x.json").write_text(json.dumps({"max_frames": 1000, "a3c": {}}))
    with pytest.raises(SystemExit):
        value_coef.main(["--skip-a2c", "--max-frames", "2000", "--name", "x"])
