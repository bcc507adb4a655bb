"""The notebook figures, drawn from real frames, real transitions and real TensorBoard files."""

import io
import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter
from toy_envs import CountEnv, zero_agent

from lib import ExperienceSourceFirstLast, make_env
from lib.a3c import Progress
from lib.plots import (
    LivePlot,
    plot_nstep_windows,
    plot_scalars,
    plot_scores,
    read_scalars,
    running_mean,
    show_frame_stack,
    show_images,
)


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
