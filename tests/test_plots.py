"""The notebook figures, drawn from real frames, real transitions and real TensorBoard files."""

import io
import itertools
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter
from toy_envs import CountEnv, zero_agent

from benchmarks.common import RESULTS
from figures import (
    LivePlot,
    learning_table,
    plot_median_bars,
    plot_nstep_windows,
    plot_scalars,
    plot_scaling,
    plot_scores,
    plot_throughput,
)
from lib import ExperienceSourceFirstLast, get_preset, make_env
from lib.a3c import Progress
from lib.plots import (
    load_benchmark,
    plot_learning_curves,
    read_scalars,
    show_frame_stack,
    show_images,
)
from lib.sync_a2c import train_a2c
from lib.tracking import running_mean


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def pong_obs():
    env = make_env("PongNoFrameskip-v4", seed=3)
    obs, _ = env.reset(seed=3)
    for _ in range(30):
        obs, *_ = env.step(2)
    env.close()
    return obs


def test_frame_stack_has_one_axis_per_frame_oldest_first(pong_obs):
    fig = show_frame_stack(pong_obs, title="Pong")
    assert len(fig.axes) == 4
    for i, ax in enumerate(fig.axes):
        shown = ax.images[0].get_array()
        assert shown.shape == (84, 84)
        np.testing.assert_array_equal(shown, pong_obs[i])
    assert fig.axes[-1].get_title() == "t (newest)" and fig.axes[0].get_title() == "t-3"
    assert fig._suptitle.get_text() == "Pong"


def test_frame_stack_rejects_a_batch(pong_obs):
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        show_frame_stack(pong_obs[None])


def test_show_images_titles_carry_shape_and_dtype(pong_obs):
    rgb = np.zeros((210, 160, 3), dtype=np.uint8)
    fig = show_images([rgb, pong_obs[-1]], ["raw", "agent"])
    assert [ax.get_title() for ax in fig.axes] == ["raw\n210×160×3 uint8", "agent\n84×84 uint8"]
    # uint8 frames share the fixed 0..255 scale
    assert fig.axes[1].images[0].get_clim() == (0, 255)


def test_running_mean_known_values():
    np.testing.assert_allclose(running_mean([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(running_mean([10, 20, 30], 100), [10, 15, 20])
    assert running_mean([], 5).size == 0
    with pytest.raises(ValueError):
        running_mean([1.0], 0)


def test_learning_curve_points_known_values():
    from lib.tracking import learning_curve

    points = learning_curve([-21.0, -19.0, -17.0], [1000, 2500, 4000], [10.04, 20.0, 31.26], 2)
    assert points == [
        {"frames": 1000, "seconds": 10.0, "score": -21.0, "mean": -21.0},
        {"frames": 2500, "seconds": 20.0, "score": -19.0, "mean": -20.0},
        {"frames": 4000, "seconds": 31.3, "score": -17.0, "mean": -18.0},
    ]


def test_plot_scores_draws_the_running_mean_and_the_bound():
    scores = [1.0, 3.0, 5.0, 7.0]
    ax = plot_scores(scores, [10, 20, 30, 40], window=2, stop_score=6.0)
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), [10, 20, 30, 40])
    np.testing.assert_allclose(line.get_ydata(), [1, 2, 4, 6])
    assert ax.lines[1].get_ydata()[0] == 6.0  # the stop line
    np.testing.assert_array_equal(ax.collections[0].get_offsets()[:, 1], scores)
    with pytest.raises(ValueError, match="3 scores but 2"):
        plot_scores([1, 2, 3], [1, 2])


def test_nstep_windows_from_a_terminated_episode():
    exp_source = ExperienceSourceFirstLast(CountEnv(length=5), zero_agent, 0.5, steps_count=3)
    exps = list(itertools.islice(exp_source, 5))
    starts = [int(e.state[0]) for e in exps]
    ax = plot_nstep_windows(
        starts, [e.steps for e in exps], [e.last_state is not None for e in exps]
    )
    bars = ax.patches
    assert [b.get_x() for b in bars] == [0, 1, 2, 3, 4]
    assert [b.get_width() for b in bars] == [3, 3, 3, 2, 1]
    markers = [ln.get_marker() for ln in ax.lines if len(ln.get_xdata())]
    # two windows bootstrap, the three tail windows end in the terminal state
    assert markers == ["o", "o", "x", "x", "x"]


def _progress(frames: int, scores: list[float], elapsed: float) -> Progress:
    mean = float(np.mean(scores[-100:])) if scores else float("nan")
    return Progress(
        frames=frames,
        updates=frames // 128,
        episodes=len(scores),
        elapsed=elapsed,
        fps=frames / elapsed,
        mean_score=mean,
        best_mean_score=None,
        scores=list(scores),
        score_frames=[int(f) for f in np.linspace(0, frames, len(scores))],
    )


def test_live_plot_outside_ipython_prints_and_keeps_the_data(capsys):
    live = LivePlot(window=2, stop_score=475.0)
    assert live.notebook is False
    live(_progress(512, [], 1.0))
    live(_progress(2048, [10.0, 20.0, 30.0], 2.0))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert "frames 2,048" in out[1] and "mean score 20.0" in out[1] and "1,024 frames/s" in out[1]
    assert "mean score n/a" in out[0]
    assert live.calls == 2 and live.last.scores == [10.0, 20.0, 30.0]
    assert live.history == [(1.0, 512, 512.0), (2.0, 2048, 1024.0)]

    fig = live.draw()
    assert len(fig.axes) == 2
    np.testing.assert_allclose(live.ax_scores.lines[0].get_ydata(), [10, 15, 25])
    np.testing.assert_array_equal(live.ax_fps.lines[0].get_ydata(), [512.0, 1024.0])
    png = Image.open(io.BytesIO(live.png()))
    assert png.format == "PNG" and png.size == (800, 256)  # figsize (10, 3.2) at 80 dpi


def test_live_plot_before_any_episode_still_draws():
    live = LivePlot(notebook=False)
    live.draw()
    assert live.status() == "no progress yet"
    assert live.ax_scores.texts[0].get_text() == "waiting for the first episode"


def test_scalars_read_back_from_an_event_file(tmp_path):
    writer = SummaryWriter(log_dir=str(tmp_path))
    for step in range(0, 500, 100):
        writer.add_scalar("losses/total", step / 100.0, step)
        writer.add_scalar("perf/fps", 1000.0 + step, step)
    writer.close()
    data = read_scalars(tmp_path, ["losses/total", "perf/fps"])
    steps, values = data["losses/total"]
    np.testing.assert_array_equal(steps, [0, 100, 200, 300, 400])
    np.testing.assert_allclose(values, [0, 1, 2, 3, 4])
    fig = plot_scalars(tmp_path, ["losses/total", "perf/fps"])
    assert [ax.get_title() for ax in fig.axes] == ["losses/total", "perf/fps"]
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [1000, 1100, 1200, 1300, 1400])
    with pytest.raises(KeyError, match="charts/nothing"):
        read_scalars(tmp_path, ["charts/nothing"])


# Notebook 6: the benchmark figures.


def test_load_benchmark_reads_json_and_names_make_bench_when_missing(tmp_path, capsys):
    assert load_benchmark("scaling_pong", tmp_path) is None
    out = capsys.readouterr().out
    assert "scaling_pong.json is missing" in out and "make bench" in out
    (tmp_path / "x.json").write_text(json.dumps({"runs": {"a": [1.0]}}))
    assert load_benchmark("x", tmp_path) == {"runs": {"a": [1.0]}}


def test_median_bars_known_values():
    ax = plot_median_bars(
        {"slow": [1.0, 2.0, 9.0], "fast": [4.0, 4.0]},
        labels={"slow": "the slow one"},
        colors={"fast": "tab:orange"},
        xlabel="things/s",
    )
    bars = ax.patches
    assert [b.get_width() for b in bars] == [2.0, 4.0]  # medians, first key on top
    assert [b.get_y() + b.get_height() / 2 for b in bars] == [1.0, 0.0]
    np.testing.assert_array_equal(ax.collections[0].get_offsets()[:, 0], [1, 2, 9])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fast", "the slow one"]
    assert [t.get_text() for t in ax.texts] == ["2", "4"]
    assert ax.get_xlabel() == "things/s"
    with pytest.raises(ValueError, match="no runs"):
        plot_median_bars({})


def test_throughput_figure_from_the_committed_benchmark():
    result = json.loads((RESULTS / "throughput_pong_2x4.json").read_text())
    ax = plot_throughput(result)
    keys = list(result["runs"])
    widths = [b.get_width() for b in ax.patches]
    np.testing.assert_allclose(widths, [np.median(result["runs"][k]) for k in keys])
    np.testing.assert_allclose(widths, [result["median"][k] for k in keys])
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert labels[keys.index("a3c")] == "A3C (lib.a3c.train)"
    assert not any("1 threads" in label for label in labels)
    colors = dict(zip(keys, (b.get_facecolor()[:3] for b in ax.patches), strict=True))
    assert colors["a3c"] != colors["a2c_t1"] != colors["env"]
    (top,) = ax.child_axes  # emulator frames: 4 per agent step
    assert "frame skip 4" in top.get_xlabel()
    assert "frames/s" in ax.get_xlabel()


def test_scaling_figure_known_values():
    result = {
        "preset": "pong",
        "envs_per_process": 4,
        "frames_per_run": 6000,
        "repeats": 2,
        "layouts": {  # JSON turns the worker counts into strings
            "2": {
                "fps": [700.0, 500.0],
                "fps_median": 600.0,
                "worker_uss_mb": 90.0,
                "learner_rss_mb": 700.0,
            },
            "1": {
                "fps": [400.0, 400.0],
                "fps_median": 400.0,
                "worker_uss_mb": 80.0,
                "learner_rss_mb": 650.0,
            },
        },
    }
    fig = plot_scaling(result)
    ax_fps, ax_mem = fig.axes
    median, linear = ax_fps.lines
    np.testing.assert_array_equal(median.get_xdata(), [1, 2])
    np.testing.assert_array_equal(median.get_ydata(), [400, 600])
    np.testing.assert_array_equal(linear.get_ydata(), [400, 800])
    assert [b.get_height() for b in ax_mem.patches] == [80.0, 90.0, 650.0, 700.0]
    assert ax_mem.get_ylabel() == "memory (MiB)"


@pytest.fixture(scope="module")
def a2c_run():
    """A real, short single-process A2C run on CartPole, as benchmarks.learning saves one."""
    r = train_a2c(get_preset("cartpole"), max_frames=3_000, device="cpu", threads=1)
    return {
        "solved": r.solved,
        "frames": r.frames,
        "seconds": r.wall_seconds,
        "steady_fps": r.steady_fps,
        "mean_score": float(np.mean(r.scores[-100:])),
        "scores": r.scores,
        "score_frames": r.score_frames,
        "score_seconds": r.score_seconds,
    }


def test_learning_curves_from_a_real_run(a2c_run):
    assert len(a2c_run["scores"]) > 50
    for x in ("frames", "seconds"):
        ax = plot_learning_curves({"a2c": [a2c_run]}, x=x, stop_score=475.0, labels={"a2c": "A2C"})
        curve, end, stop = ax.lines
        np.testing.assert_array_equal(curve.get_xdata(), a2c_run[f"score_{x}"])
        np.testing.assert_allclose(curve.get_ydata(), running_mean(a2c_run["scores"], 100))
        assert end.get_marker() == "x"  # 3,000 frames do not solve CartPole
        assert stop.get_ydata()[0] == 475.0
        assert curve.get_label() == "A2C (1 seed)"
        assert ax.get_xlabel().startswith("frames" if x == "frames" else "wall-clock seconds")
    with pytest.raises(ValueError, match="episodes"):
        plot_learning_curves({"a2c": [a2c_run]}, x="episodes")


def test_learning_table_known_values(a2c_run):
    solved = {
        "solved": True,
        "frames": 100,
        "seconds": 2.0,
        "steady_fps": 50.0,
        "mean_score": 480.0,
    }
    failed = {
        "solved": False,
        "frames": 300,
        "seconds": 4.0,
        "steady_fps": 75.0,
        "mean_score": 20.0,
    }
    lines = learning_table({"a3c": [solved, failed]}, labels={"a3c": "A3C"}).splitlines()
    assert lines[2] == "| A3C | 0 | yes | 100 | 2.0 | 50 | 480.0 |"
    assert lines[3] == "| A3C | 1 | no | 300 | 4.0 | 75 | 20.0 |"
    assert lines[4].startswith("| **A3C** | mean ± std | 1/2 | **200 ± 141** | **3.0 ± 1.4** |")
    one = learning_table({"a2c": [a2c_run]}).splitlines()
    assert one[-1].startswith(f"| **a2c** | mean ± std | 0/1 | **{a2c_run['frames']:,}** |")


def test_mean_curves_draw_a_line_per_run_and_mark_a_solved_one():
    from figures import plot_mean_curves

    points = [
        {"frames": 100 * i, "seconds": 30.0 * i, "mean": m} for i, m in enumerate([-21, 0, 19])
    ]
    ax = plot_mean_curves({"solved": points, "not yet": points[:2]}, stop_score=18.0)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["solved"].get_xdata()) == [0, 100, 200]
    assert list(lines["not yet"].get_ydata()) == [-21, 0]
    circles = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(circles) == 1 and list(circles[0].get_ydata()) == [19]  # only the solved run
    minutes = plot_mean_curves({"solved": points}, x="minutes", colors={"solved": "tab:red"})
    assert list(minutes.get_lines()[0].get_xdata()) == [0.0, 0.5, 1.0]
    assert minutes.get_lines()[0].get_color() == "tab:red"
    with pytest.raises(ValueError, match="use 'frames' or 'minutes'"):
        plot_mean_curves({}, x="hours")
