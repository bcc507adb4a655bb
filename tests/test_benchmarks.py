"""The benchmarks' arithmetic, checked by hand, and their runs kept honest."""

import json
import math
import os
import shutil
import signal

import pytest
from procs import wait_for, workers_of

from benchmarks.common import table, train_in_tmp
from benchmarks.scaling import layouts
from benchmarks.throughput import combined_ceiling
from lib import get_preset
from lib.tracking import machine_info


def test_combined_ceiling_adds_core_seconds_per_frame():
    median = {"env": 4000.0, "inference": 2000.0, "learner_t1": 1000.0, "learner_t2": 1600.0}
    # 2 workers on 2 cores: 2/4000 + 2/2000 s; the learner at its most core-efficient: 1/1000
    # (2 threads would cost 2/1600 = 1.25 ms of core time per frame)
    per_frame = 2 / 4000 + 2 / 2000 + 1 / 1000
    assert combined_ceiling(median, processes=2, cores=2) == pytest.approx(2 / per_frame)
    assert combined_ceiling(median, processes=2, cores=2) == pytest.approx(800.0)


def test_scaling_layouts_double_up_to_the_core_count():
    assert layouts(1) == [1]
    assert layouts(2) == [1, 2]
    assert layouts(6) == [1, 2, 4, 6]
    assert layouts(16) == [1, 2, 4, 8, 16]


def test_table_is_markdown():
    text = table([{"a": 1, "b": 1234.5}, {"a": 2, "b": 0.5}], ["a", "b"])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | 1,234 |", "| 2 | 0.50 |"]


def test_an_interrupted_run_stops_the_benchmark_instead_of_counting(sigint_enabled):
    """`train` returns normally on Ctrl+C; a benchmark must not record that run as a figure."""
    config = get_preset("cartpole", processes=1, envs_per_process=2, max_frames=0)
    sent = []

    def press_ctrl_c(progress):
        if progress.updates and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train_in_tmp(config, callback=press_ctrl_c, callback_seconds=0.5)
    assert sent and wait_for(lambda: workers_of() == [], 30)


def test_gpu_script_refuses_to_overwrite_a_committed_result_before_it_starts(capsys):
    """gpu_pong.json is the H100 run that notebook 6 plots; a second call must not replace it."""
    from benchmarks import gpu_pong
    from benchmarks.common import RESULTS

    assert (RESULTS / "gpu_pong.json").exists()
    with pytest.raises(SystemExit) as stopped:
        gpu_pong.main(["--device", "cpu", "--name", "gpu_pong"])
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert "gpu_pong.json already holds a measurement" in err and "--name" in err
    assert "machine:" not in out  # nothing was probed


@pytest.mark.slow
def test_gpu_script_rehearsed_on_the_cpu_writes_what_notebook_6_reads(tmp_path):
    """`benchmarks.gpu_pong` end to end with --device cpu and a tiny budget: a probe with
    each env pipeline, the faster one chosen, `make train`'s command with it, and the JSON."""
    from benchmarks import gpu_pong
    from benchmarks.common import RESULTS

    name = f"test_gpu_pong_{os.getpid()}"
    run_dir = tmp_path / "run"
    try:
        args = ["--device", "cpu", "--probe-seconds", "12", "--deadline-seconds", "1"]
        args += ["--cpu-cores", "--processes", "1", "--envs", "2"]
        assert gpu_pong.main([*args, "--name", name, "--run-dir", str(run_dir)]) == 0
        result = json.loads((RESULTS / f"{name}.json").read_text())
    finally:
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
    probes = result["probes"]
    assert [(p["vector_env"], p["processes"], p["envs"]) for p in probes] == [
        (False, 1, 2),
        (True, 1, 2),
    ]
    faster = max(probes, key=lambda p: p["steady_fps"])["vector_env"]
    assert ("--vector-env" if faster else "--no-vector-env") in result["command"].split()
    assert result["config"]["vector_env"] is faster and result["config"]["processes"] == 1
    assert result["summary"]["stop_reason"] == "max_seconds"
    assert result["summary"]["layout"]["cores"] == result["machine"]["usable_cores"]
    assert (run_dir / "checkpoints" / "last.pt").exists()


def test_milestones_need_a_full_window():
    from benchmarks.pong_runs import reached

    points = [
        {"frames": 10 * i, "seconds": float(i), "mean": m} for i, m in enumerate([0, 5, 1, 6])
    ]
    assert reached(points, 5.0, window=1) == {"frames": 10, "seconds": 1.0, "episodes": 2}
    assert reached(points, 5.0, window=3) == {"frames": 30, "seconds": 3.0, "episodes": 4}
    assert reached(points, 7.0, window=1)["frames"] is None


def test_a_runs_mean_at_some_frames_is_the_last_full_windows_before_them():
    from benchmarks.pong_runs import mean_at

    points = [{"frames": f, "mean": m} for f, m in [(100, -21.0), (250, -20.5), (400, -19.0)]]
    assert mean_at(points, 300, window=1) == -20.5  # the point at 250, not the later one
    assert mean_at(points, 400, window=1) == -19.0
    assert mean_at(points, 300, window=3) is None  # two scores only by then
    assert mean_at(points, 401, window=1) is None  # the run ended before
    assert mean_at(points, 99, window=1) is None


def test_a_runs_curve_reads_the_same_from_curve_json_and_from_tensorboard(tmp_path):
    from benchmarks.pong_runs import describe, read_curve

    config = get_preset("cartpole", processes=1, envs_per_process=4, max_frames=6_000)
    from lib.a3c import train

    train(config, run_dir=tmp_path, progress=False)
    written = read_curve(tmp_path)
    (tmp_path / "curve.json").rename(tmp_path / "curve.json.bak")
    from_tb = read_curve(tmp_path)
    assert len(written) == len(from_tb) > 10
    assert [p["frames"] for p in written] == [p["frames"] for p in from_tb]
    assert [p["score"] for p in written] == [p["score"] for p in from_tb]
    assert [p["mean"] for p in written] == [p["mean"] for p in from_tb]
    row = describe(tmp_path)
    assert row["scores"] == [p["score"] for p in written] and not row["solved"]
    assert row["machine"] == machine_info() | {"date": row["machine"]["date"]}  # no curve.json
    curve = json.loads((tmp_path / "curve.json.bak").read_text())
    assert curve["machine"]["cpu"] == machine_info()["cpu"]
    curve["machine"]["cpu"] = "the machine that ran it"  # as if recorded elsewhere
    (tmp_path / "curve.json").write_text(json.dumps(curve))
    assert describe(tmp_path)["machine"]["cpu"] == "the machine that ran it"
    # an untrained policy over CartPole's 2 actions: close to the uniform ln 2 nats
    assert 0.6 < row["entropy_nats_last"] <= math.log(2) + 1e-6


def test_keep_adds_runs_to_a_results_file_whose_other_run_folders_are_gone(tmp_path):
    from benchmarks import pong_runs
    from benchmarks.common import RESULTS
    from lib.a3c import train

    first, second = tmp_path / "first", tmp_path / "second"
    config = get_preset("cartpole", processes=1, envs_per_process=4, max_frames=3_000)
    train(config, run_dir=first, progress=False)
    shutil.copytree(first, second)
    name = f"test_keep_{os.getpid()}"
    path = RESULTS / f"{name}.json"
    try:
        assert pong_runs.main([str(first), "--name", name]) == 0
        shutil.rmtree(first)  # its folder is gone; the results file still holds it
        assert pong_runs.main([str(second), "--name", name, "--keep", "--at", "1000"]) == 0
        runs = json.loads(path.read_text())["runs"]
        assert [r["run"] for r in runs] == ["first", "second"]
        assert runs[0]["mean_at"].keys() == runs[1]["mean_at"].keys() == {"0.001M"}
        assert pong_runs.main([str(second), "--name", name, "--keep"]) == 0  # replaced, not twice
        assert [r["run"] for r in json.loads(path.read_text())["runs"]] == ["first", "second"]
        assert pong_runs.main([str(second), "--name", name]) == 0  # without --keep: only these
        assert [r["run"] for r in json.loads(path.read_text())["runs"]] == ["second"]
    finally:
        path.unlink(missing_ok=True)


def test_median_frames_to_solve_counts_an_unsolved_run_as_never_solving():
    from benchmarks.pong_runs import median_frames_to_solve

    def run(frames):
        return {"solved": frames is not None, "summary": {"frames": frames or 12_000_000}}

    assert median_frames_to_solve([run(4e6), run(6e6), run(None)]) == 6e6
    assert median_frames_to_solve([run(4e6), run(6e6), run(8e6), run(None)]) == 7e6
    assert median_frames_to_solve([run(4e6), run(None)]) == math.inf
    assert median_frames_to_solve([run(5e6)]) == 5e6


def test_merge_keeps_the_old_order_and_replaces_runs_by_name():
    from benchmarks.pong_runs import merge

    def run(name, means):
        points = [
            {"frames": 100 * (i + 1), "seconds": i + 1.0, "mean": m} for i, m in enumerate(means)
        ]
        return {"run": name, "config": {"score_window": 1}, "points": points, "milestones": {}}

    old = [run("a", [-21.0]), run("b", [-20.0])]
    new = [run("c", [1.0, 2.0]), run("b", [5.0, 6.0])]
    new[1]["machine"] = {"cpu": "Intel Xeon"}
    merged = merge(old, new, at=[150, 200], old_machine={"cpu": "AMD EPYC"})
    assert [r["run"] for r in merged] == ["a", "b", "c"]
    # an old run takes its file's machine; a new run keeps the one it ran on
    assert [r.get("machine") for r in merged] == [{"cpu": "AMD EPYC"}, {"cpu": "Intel Xeon"}, None]
    assert merged[1]["points"][-1]["mean"] == 6.0  # the new b
    assert merged[0]["mean_at"] == {"0.00015M": None, "0.0002M": None}  # a ended at 100
    assert merged[1]["mean_at"] == {"0.00015M": 5.0, "0.0002M": 6.0}
    assert merged[0]["milestones"]["-20"]["frames"] is None  # a stayed at -21
    assert merged[2]["milestones"]["0"] == {"frames": 100, "seconds": 1.0, "episodes": 1}
    assert merged[2]["milestones"]["18"]["frames"] is None


def test_presets_benchmark_writes_medians_and_ratios():
    from benchmarks import presets
    from benchmarks.common import RESULTS

    name = f"test_presets_{os.getpid()}"
    args = ["cartpole", "--frames", "3000", "--repeats", "2", "--name", name]
    try:
        assert presets.main(args) == 0
        result = json.loads((RESULTS / f"{name}.json").read_text())
    finally:
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
    (row,) = result["rows"]
    runs = result["runs"]["cartpole"]
    assert len(runs) == 2 and all(x > 0 for x in runs)
    assert row["frames/s (median)"] == (runs[0] + runs[1]) / 2 and row["layout"] == "2 x 8"


def test_a_preset_name_can_carry_the_fields_it_changes():
    from benchmarks.presets import parse_preset
    from lib import ConfigError

    config = parse_preset("pong-fast:reward_steps=4,worker_device=cpu,clip_grad=0.1", max_frames=9)
    assert (config.preset, config.net, config.reward_steps) == ("pong-fast", "atari-small", 4)
    assert (config.worker_device, config.clip_grad, config.max_frames) == ("cpu", 0.1, 9)
    assert parse_preset("pong-fast").reward_steps == 8
    with pytest.raises(SystemExit, match="field=value"):
        parse_preset("pong-fast:reward_steps")
    with pytest.raises(ConfigError, match="reward_step"):
        parse_preset("pong-fast:reward_step=4")


def test_learning_benchmark_runs_both_variants_in_turn():
    """A fixed budget of a few seconds a run: the rows, the runs and the file, not the scores."""
    from benchmarks import learning
    from benchmarks.common import RESULTS

    name = f"test_variants_{os.getpid()}"
    args = ["--variant", "data", "grad", "--skip-a2c", "--seeds", "1", "--seconds", "4"]
    try:
        result = learning.main([*args, "--name", name, "--processes", "1", "--envs", "2"])
        saved = json.loads((RESULTS / f"{name}.json").read_text())
    finally:
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
    assert [r["what"] for r in result["rows"]] == ["A3C", "A3C, gradient-parallel"]
    assert set(saved["runs"]) == {"a3c", "a3c_grad", "a2c"} and saved["runs"]["a2c"] == []
    assert all(r["frames"] > 0 for key in ("a3c", "a3c_grad") for r in saved["runs"][key])
    # CartPole's micro-batch of 32 samples is 896 bytes of arrays; its gradient is a float32
    # for each of the net's parameters (thousands), so the gradients weigh several times more
    (data,), (grad,) = saved["runs"]["a3c"], saved["runs"]["a3c_grad"]
    assert grad["bytes_per_update"] > 3 * data["bytes_per_update"] > 0
    for run in (data, grad):
        curve = run["policy_lag_curve"]
        assert 0 < len(curve["frames"]) == len(curve["values"]) <= 60
        assert curve["frames"] == sorted(curve["frames"]) and curve["frames"][-1] <= run["frames"]


def test_a_fall_is_counted_once_per_drop_from_high_to_low():
    from benchmarks.study import count_falls

    # running mean over 2: 10, 400, 400, 50 (fall), 350 (up again), 350, 20 (fall), 20
    scores = [10, 10, 790, 10, 90, 610, 90, 10, 30]
    assert count_falls(scores, window=2, high=300, low=100) == 2
    # never high: no fall however low it goes; high but never low: no fall
    assert count_falls([50, 0, 50, 0], window=2, high=300, low=100) == 0
    assert count_falls([400, 400, 150, 150], window=2, high=300, low=100) == 0


def test_study_runs_a_grid_and_records_entropy_and_falls():
    """Two cells, one seed, runs of 20,000 frames: the file's shape, not the scores."""
    from benchmarks import study
    from benchmarks.common import RESULTS

    name = f"test_study_{os.getpid()}"
    args = ["--lr", "0.002", "--beta", "0", "0.05", "--seeds", "1", "--max-frames", "20000"]
    try:
        result = study.main([*args, "--name", name])
        saved = json.loads((RESULTS / f"{name}.json").read_text())
    finally:
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
    assert [(r["learning rate"], r["entropy beta"]) for r in result["rows"]] == [
        ("0.002", "0"),
        ("0.002", "0.05"),
    ]
    for cell in ("lr=0.002 beta=0", "lr=0.002 beta=0.05"):
        (run,) = saved["runs"][cell]
        assert run["frames"] >= 20_000 and not run["solved"]
        # CartPole has 2 actions: the policy's entropy lies between 0 and ln 2 nats
        assert all(0 <= v <= math.log(2) + 1e-6 for v in run["entropy"]["values"])
        # 20,000 frames are too few for the running mean to stand at 300: no fall can count
        assert max(run["score_mean20"]["values"]) < study.FALL_HIGH and run["falls"] == 0


def test_notebook_times_runs_a_notebook_in_place_and_times_it(tmp_path):
    """A fresh kernel in the notebook's folder, outputs written back, seconds returned."""
    import nbformat

    from benchmarks.notebook_times import run_notebook

    path = tmp_path / "tiny.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os, time\ntime.sleep(0.5)\nprint(os.getcwd())")]
    nbformat.write(nb, path)
    seconds = run_notebook(path, timeout=120)
    (out,) = nbformat.read(path, as_version=4).cells[0].outputs
    assert out.text.strip() == str(tmp_path)
    assert 0.5 <= seconds < 120


def test_run_time_boxes_quote_each_notebook_s_own_timings():
    """Each "Run time" line gives its own notebook's seconds from `notebook_times.json`, and
    "not yet measured on a GPU" exactly where `notebook_times_cuda.json` has no entry."""
    import nbformat

    from benchmarks.notebook_times import NOTEBOOKS, RUN_TIME, run_time_line, timings

    cpu, gpu = timings()
    paths = sorted(NOTEBOOKS.glob("0[1-9]_*.ipynb"))
    assert [p.stem for p in paths] == sorted(cpu["seconds"])
    for path in paths:
        box = nbformat.read(path, as_version=4).cells[1].source
        (line,) = RUN_TIME.findall(box)
        assert line == run_time_line(path.stem, cpu, gpu), path.name


def test_run_time_boxes_take_the_gpu_seconds_when_a_gpu_machine_sent_them(tmp_path):
    """`--boxes` after a GPU run: the GPU part is filled in, the notebook's own words around it
    stay, and the new line is one that `--boxes` can rewrite again."""
    import shutil

    import nbformat

    from benchmarks.common import RESULTS
    from benchmarks.notebook_times import NOTEBOOKS, write_boxes

    (path,) = NOTEBOOKS.glob("08_*.ipynb")
    copy = shutil.copy(path, tmp_path / path.name)
    cpu = json.loads((RESULTS / "notebook_times.json").read_text())
    cpu["seconds"][path.stem] = 1234.5
    cpu["machines"][path.stem]["cores"] = 2
    (tmp_path / "notebook_times.json").write_text(json.dumps(cpu))
    gpu = {"seconds": {path.stem: 12.0}, "machines": {path.stem: {"gpu": "H100", "cores": 16}}}
    (tmp_path / "notebook_times_cuda.json").write_text(json.dumps(gpu))

    before = nbformat.read(copy, as_version=4).cells[1].source
    assert write_boxes([copy], results=tmp_path) == [copy]
    box = nbformat.read(copy, as_version=4).cells[1].source
    line = "> **Run time:** 1,234 s on a 2-core CPU, 12 s on an H100 GPU machine."
    assert line in box
    head, _, tail = box.partition(line)
    old_head, _, old_tail = before.partition("> **Run time:**")
    assert head == old_head and "New words are in the [glossary]" in head
    assert tail == old_tail.partition("\n")[1] + old_tail.partition("\n")[2]
    assert write_boxes([copy], results=tmp_path) == []


def test_a_quick_mode_timing_is_kept_apart_and_named_as_such():
    """A quick-mode run (a GPU machine showing that a notebook longer than one call runs
    through) goes under "quick", never over the full run's seconds, and its "Run time" line
    says so; a full-mode timing, once there, is the one quoted."""
    from benchmarks.notebook_times import RUN_TIME, record, run_time_line

    h200 = {"gpu": "H200", "cores": 16}
    gpu = {"seconds": {}, "machines": {}}
    record(gpu, "05_x", 40.34, h200, quick=True)
    assert gpu["seconds"] == {} and gpu["quick"]["seconds"] == {"05_x": 40.3}
    cpu = {"seconds": {"05_x": 62.3}, "machines": {"05_x": {"cores": 2}}}
    line = run_time_line("05_x", cpu, gpu)
    assert (
        line == "> **Run time:** 62 s on a 2-core CPU, 40 s in quick mode on an H200 GPU machine."
    )
    assert RUN_TIME.fullmatch(line)
    record(gpu, "05_x", 700.0, h200, quick=False)
    assert run_time_line("05_x", cpu, gpu).endswith(", 700 s on an H200 GPU machine.")
    assert run_time_line(
        "06_y", {"seconds": {"06_y": 1.0}, "machines": {"06_y": {"cores": 2}}}, gpu
    ).endswith("; not yet measured on a GPU.")
