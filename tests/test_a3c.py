"""A3C end to end with real spawned workers: Pong plumbing, CartPole learning, the CLIs."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image
from procs import workers_of
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lib import AtariA2C, get_preset
from lib.a3c import train
from lib.checkpoint import load_checkpoint
from lib.config import override
from lib.tracking import Summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def no_workers_left():
    yield
    assert workers_of() == [], "a test left spawned workers behind"


@pytest.fixture(scope="module")
def pong_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pong")
    config = get_preset("pong", processes=2, envs_per_process=2, max_frames=384)
    summary = train(config, run_dir=run_dir, device="cpu", progress=False)
    return run_dir, summary


def test_short_pong_run_stops_at_max_frames(pong_run):
    run_dir, summary = pong_run
    assert summary.stop_reason == "max_frames" and not summary.solved
    assert summary.frames == 384 and summary.updates == 3  # 12 micro-batches of 32, 3 batches
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["frames"] == 384 and on_disk["stop_reason"] == "max_frames"
    assert Summary.load(run_dir / "summary.json") == summary


def test_bytes_per_update_are_the_micro_batches_that_made_it(pong_run):
    """Data parallelism pipes each sample's frames: per update of 128 samples, four
    micro-batches of 32 stacks of 4x84x84 uint8 frames, int64 actions and float32 returns,
    plus the pickle's framing, a few hundred bytes per message. No Pong game ends in 384
    frames, so no score messages add to it."""
    _, summary = pong_run
    payload = 4 * 32 * (4 * 84 * 84 + 8 + 4)  # 3,614,208 bytes
    assert payload <= summary.bytes_per_update <= payload + 4 * 1024, summary.bytes_per_update


def test_tensorboard_holds_the_seed_metrics(pong_run):
    run_dir, _ = pong_run
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {
        "charts/advantage",
        "charts/values",
        "charts/batch_rewards",
        "losses/entropy",
        "losses/policy",
        "losses/value",
        "losses/total",
        "perf/fps",
        "perf/wait_s",
        "perf/policy_lag_mean",
        "perf/policy_lag_max",
        "perf/bootstrap_age",
    }
    assert expected <= tags
    # the real workers tag their micro-batches: no data from weights newer than the learner's
    assert all(e.value >= 0 for e in acc.Scalars("perf/policy_lag_mean"))
    entropy = acc.Scalars("losses/entropy")[-1].value
    # an almost uniform policy over 6 actions: beta * sum p log p ~ -0.01 * ln 6
    assert entropy == pytest.approx(-0.01 * torch.log(torch.tensor(6.0)).item(), rel=0.05)
    assert acc.Scalars("losses/total")[-1].step == 384


def test_checkpoint_loads_back_into_atari_a2c(pong_run):
    run_dir, _ = pong_run
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    net = AtariA2C(tuple(state["obs_shape"]), state["n_actions"])
    net.load_state_dict(state["model"])
    assert state["frames"] == 384 and state["config"]["preset"] == "pong"
    assert "optimizer" in state and state["versions"]["torch"] == torch.__version__
    logits, value = net(torch.zeros(1, 4, 84, 84, dtype=torch.uint8))
    assert logits.shape == (1, 6) and value.shape == (1, 1)


def test_play_writes_a_gif(pong_run, tmp_path):
    run_dir, _ = pong_run
    gif = tmp_path / "pong.gif"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lib.play",
            "--checkpoint",
            str(run_dir / "checkpoints" / "last.pt"),
            "--gif",
            str(gif),
            "--max-steps",
            "60",
            "--episodes",
            "2",
            "--json",
            str(tmp_path / "eval.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "episode 1: score" in out.stdout
    with Image.open(gif) as img:
        assert img.size == (160, 210)  # the real Atari screen, in colour
        # 60 steps, every second frame kept; Pillow merges identical neighbours
        assert 10 <= img.n_frames <= 30
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["seeds"] == [0, 1] and len(record["scores"]) == 2
    assert record["mean"] == round(sum(record["scores"]) / 2, 2)
    assert f"mean score over 2 episodes: {record['mean']:.2f}" in out.stdout


@pytest.mark.slow
def test_cartpole_preset_learns_to_475(tmp_path):
    config = get_preset("cartpole")
    t0 = time.monotonic()
    summary = train(config, run_dir=tmp_path, progress=False)
    seconds = time.monotonic() - t0
    print(
        f"\nCartPole preset: mean {summary.mean_score:.1f} after {summary.frames} frames, "
        f"{summary.episodes} episodes, {seconds:.1f} s wall ({summary.steady_fps:.0f} frames/s, "
        f"{os.cpu_count()} cores)"
    )
    assert summary.solved and summary.stop_reason == "solved"
    assert summary.mean_score >= 475
    # best.pt holds the model from the moment of the best mean, with the 100 scores behind it
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert len(best["scores"]) == 100
    assert sum(best["scores"]) / 100 == pytest.approx(best["best_mean_score"])
    assert best["best_mean_score"] == pytest.approx(summary.best_mean_score)
    assert best["best_mean_score"] >= 475
    assert "optimizer" not in best  # a model to play with, not a state to resume


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "16"], "micro_batch_size"),
        (["--processes", "0"], "processes"),
        (["--preset", "pnog"], "unknown preset"),
        (["--device", "cuda"], "CUDA"),
        (["--env-id", "Pongg-v4"], "unknown environment id"),
        (["--worker-device", "gpu"], "invalid choice"),
    ],
)
def test_cli_rejects_bad_input_before_starting(args, message, capsys):
    from lib.train import main

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so --device cuda is valid here")
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_cli_fits_the_layout_to_the_machine_says_why_and_options_win(tmp_path):
    """On one core (taskset) the pong-fast preset keeps its layout; an option given on the
    command line wins over the rule; the summary records the layout, the reason and the cores."""
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "lib.train", "--preset", "pong-fast"]
    cmd += ["--envs", "2", "--max-frames", "1", "--no-progress", "--run-dir", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (
        "layout: 2 workers x 2 envs (ale-py's vector env), learner threads auto, worker device "
        "cpu: the pong-fast preset's own layout, with --envs-per-process as given"
    ) in out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cores"] == 1
    assert (
        summary["layout"]["cores"] == 1 and "pong-fast preset's own" in summary["layout"]["reason"]
    )


def test_max_seconds_bounds_the_wall_clock(tmp_path):
    config = get_preset("cartpole", processes=1, envs_per_process=2, max_frames=0, max_seconds=4)
    t0 = time.monotonic()
    summary = train(config, run_dir=tmp_path, progress=False)
    assert summary.stop_reason == "max_seconds" and summary.frames > 0
    # bounded, with room for a slow start-up on a busy machine
    assert 4 <= summary.wall_seconds and time.monotonic() - t0 < 4 + 60


def test_workers_run_one_openmp_thread_at_lower_priority():
    """Read once each worker has sent a micro-batch, so has set itself up (`prepare_worker`):
    a worker still importing torch runs at the learner's priority (a CI run once read one)."""
    import psutil
    from procs import wait_for_micro_batches, workers_of

    from lib.envs import obs_shape_and_actions
    from lib.model import make_net
    from lib.pool import WorkerPool
    from lib.worker import run_worker

    config = get_preset("cartpole", processes=2, envs_per_process=1)
    omp_before = os.environ.get("OMP_NUM_THREADS")
    net = make_net(config, *obs_shape_and_actions(config.env_id)).share_memory()
    pool = WorkerPool(config, net, "cpu", run_worker)
    pool.start()
    try:
        sent = wait_for_micro_batches(pool, {0, 1})
        assert sent == {0, 1}, f"only workers {sorted(sent)} sent a micro-batch in 120 s"
        seen = {
            w.pid: (w.nice() - psutil.Process().nice(), w.environ()["OMP_NUM_THREADS"])
            for w in workers_of()
        }
    finally:
        pool.stop()
    assert len(seen) == 2
    # niceness stops at 19: under `nice -n 19` the workers cannot go lower than the learner
    expected = min(19, psutil.Process().nice() + config.worker_nice) - psutil.Process().nice()
    assert all(nice == expected for nice, _ in seen.values()), seen
    assert all(omp == "1" for _, omp in seen.values()), seen
    assert os.environ.get("OMP_NUM_THREADS") == omp_before  # only the children got it


def test_worker_without_os_nice_runs_at_normal_priority_and_says_so(capfd):
    """Windows has no `os.nice`: a worker must skip it with a note, not die before playing."""
    import psutil
    from procs import wait_for_micro_batches, worker_without_nice

    from lib.envs import obs_shape_and_actions
    from lib.model import make_net
    from lib.pool import WorkerPool

    config = get_preset("cartpole", processes=1, envs_per_process=2)
    net = make_net(config, *obs_shape_and_actions(config.env_id)).share_memory()
    pool = WorkerPool(config, net, "cpu", target=worker_without_nice)
    pool.start()
    try:
        # a worker that died on os.nice would raise here (pool.check)
        assert wait_for_micro_batches(pool, {0}) == {0}, "the worker never sent a micro-batch"
        (worker,) = workers_of()
        assert worker.nice() == psutil.Process().nice()  # not lowered
    finally:
        pool.stop()
    err = capfd.readouterr().err
    assert err.count("os.nice is not available") == 1, err


def test_exported_model_is_half_precision_small_and_plays_like_the_original(pong_run, tmp_path):
    from lib.checkpoint import export_model, load_model

    run_dir, summary = pong_run
    src = run_dir / "checkpoints" / "last.pt"
    dst = export_model(src, tmp_path / "assets" / "agent.pt")
    state = load_checkpoint(dst)
    assert all(v.dtype == torch.float16 for v in state["model"].values())
    assert "optimizer" not in state and state["frames"] == summary.frames
    assert dst.stat().st_size < 0.6 * src.stat().st_size  # half the weights, no Adam moments
    full, _ = load_model(src)
    half, config = load_model(dst)
    assert config.preset == "pong" and next(half.parameters()).dtype == torch.float32
    frames = torch.randint(0, 256, (64, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(half(frames)[0], full(frames)[0], atol=1e-2, rtol=1e-2)


def test_an_episode_encodes_as_an_animated_png_that_notebooks_show_as_image_png():
    import io

    from lib.envs import make_env
    from lib.play import encode_animation

    env = make_env("PongNoFrameskip-v4", seed=0, render_mode="rgb_array")
    env.reset(seed=0)
    frames = []
    for _ in range(40):
        frames.append(env.render())
        env.step(env.action_space.sample())
    env.close()
    data = encode_animation(frames, "PNG", every=2)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"acTL" in data  # an animation chunk
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.is_animated and img.n_frames >= 2
        assert img.size == (160, 210)


def test_progress_into_a_log_file_comes_as_whole_lines(tmp_path):
    """A run in the background (`nohup ... > log`) gets readable lines, not a redrawn bar."""
    out = subprocess.run(
        [sys.executable, "-m", "lib.train", "--preset", "cartpole", "--processes", "1"]
        + ["--max-frames", "6000", "--run-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = [x.strip("\r") for x in out.stderr.splitlines() if "A3C cartpole" in x]
    assert len(lines) >= 2  # the start, and the end
    assert all("frames [" in x for x in lines)
    assert "episodes=" in lines[-1] and "mean=" in lines[-1]
    assert len(lines) < 10  # one a minute at most, not one per update


def test_policy_lag_grows_while_the_learner_falls_behind(tmp_path):
    """One micro-batch per update, so the lag counts micro-batches. A learner that sleeps at
    every message falls behind; the workers keep sending until every place a message can
    wait is full (their senders' queues, the OS pipe buffers, the readers, the inbox). What
    the learner trains on has waited behind all of it, and the lag grows as the backlog does.
    An awake learner keeps up, and its lag stays small."""
    from lib.plots import read_scalars

    config = get_preset(
        "cartpole", processes=2, envs_per_process=2, batch_size=32, micro_batch_size=32
    )
    lags = {}
    for name, nap in (("awake", 0.0), ("sleepy", 0.05)):
        run = tmp_path / name
        s = train(
            override(config, max_frames=4_000, stop_score=1e9),
            run_dir=run,
            progress=False,
            callback=lambda _progress, nap=nap: time.sleep(nap),
            callback_seconds=0.0,
        )
        assert s.stop_reason == "max_frames"
        lags[name] = read_scalars(run, ["perf/policy_lag_mean"])["perf/policy_lag_mean"][1]
    sleepy, awake = lags["sleepy"], lags["awake"]
    print(f"policy lag, means of 10 updates: awake {awake.round(1)}, sleepy {sleepy.round(1)}")
    assert sleepy[-1] > sleepy[0] + 10  # it grows while the backlog builds
    assert sleepy.mean() > awake.mean() + 5
