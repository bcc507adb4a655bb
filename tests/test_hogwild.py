"""The A3C paper's design (`variant="hogwild"`): each worker updates the shared weights and a
shared Adam itself, and the run's faults and exits behave as in the other variants."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from learner_parts import cartpole_batch, endless_cartpole, feed, finish, learner
from procs import hogwild_one_update, report_weight_sums, workers_of

import lib.pool
from lib import get_preset, make_net
from lib.a2c import a2c_gradients
from lib.a3c import WorkerError, train
from lib.checkpoint import load_checkpoint
from lib.envs import obs_shape_and_actions
from lib.hogwild import HogwildStep, hogwild_update, shared_adam
from lib.messages import Applied
from lib.tracking import Summary

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("no_workers_left")


def hogwild(**overrides):
    return endless_cartpole(**{"variant": "hogwild", **overrides})


def in_a_worker(ctx, *args) -> None:
    proc = ctx.Process(target=hogwild_one_update, args=args, daemon=True)
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0


def test_one_workers_update_and_adams_moments_are_seen_by_the_others():
    """Worked out in this process: from zero moments, Adam's first step leaves
    exp_avg = (1 - 0.9) g1; a second worker's step, at the weights the first left, makes it
    0.9 * 0.1 g1 + 0.1 g2 and the step count 2: it used the first worker's moments."""
    config = get_preset("cartpole", variant="hogwild", processes=2, clip_grad=1e9)
    step = HogwildStep(config, make_net(config, *obs_shape_and_actions(config.env_id)))
    first, second = cartpole_batch(32, seed=1), cartpole_batch(32, seed=2)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    reader = ctx.Process(target=report_weight_sums, args=(step.net, child), daemon=True)
    reader.start()
    try:
        parent.send("sum")
        assert parent.poll(60)
        before = parent.recv()
        g1, _ = a2c_gradients(step.net, first, config.entropy_beta, config.value_loss_coef)
        in_a_worker(ctx, 0, config, step.net, step.shared, first)
        parent.send("sum")
        assert parent.poll(60)
        assert parent.recv() != before  # a third process sees the first worker's update
        state = step.shared.optimizer_state
        assert step.updates == 1 and [s["step"].item() for s in state] == [1.0] * len(state)
        for s, g in zip(state, g1, strict=True):
            torch.testing.assert_close(s["exp_avg"], 0.1 * g)

        g2, _ = a2c_gradients(step.net, second, config.entropy_beta, config.value_loss_coef)
        in_a_worker(ctx, 1, config, step.net, step.shared, second)
        assert step.updates == 2 and state[0]["step"].item() == 2.0
        for s, a, b in zip(state, g1, g2, strict=True):
            torch.testing.assert_close(s["exp_avg"], 0.09 * a + 0.1 * b)
        saved = step.state()["optimizer"]["state"][0]  # what a checkpoint holds
        assert saved["step"].item() == 2.0 and torch.equal(saved["exp_avg"], state[0]["exp_avg"])
        parent.send(None)
        reader.join(10)
    finally:
        if reader.is_alive():
            reader.kill()


def test_a_hogwild_worker_anneals_by_the_runs_update_count():
    """Seven updates into a run of 64-frame updates that ends at 1,024 frames, a worker steps
    at 0.002 * (1 - 7 * 64 / 1024) = 0.001125, and its step is the run's eighth."""
    config = get_preset(
        "cartpole",
        variant="hogwild",
        batch_size=64,
        micro_batch_size=64,
        max_frames=1024,
        lr_anneal=True,
    )
    step = HogwildStep(config, make_net(config, *obs_shape_and_actions(config.env_id)))
    step.restore(step.state() | {"updates": 7})
    optimizer = shared_adam(step.net, config, step.shared.optimizer_state)
    batch = cartpole_batch(64, seed=1)
    report = hogwild_update(1, step.net, optimizer, config, batch, step.shared.counts, 7, 0)
    assert report.stats["losses/learning_rate"] == pytest.approx(0.001125)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.001125)
    assert step.updates == 8


@pytest.mark.slow
def test_hogwild_a3c_learns_cartpole_to_475(tmp_path):
    config = get_preset("cartpole", variant="hogwild", max_frames=3_000_000)
    summary = train(config, run_dir=tmp_path, progress=False)
    assert summary.solved and summary.mean_score >= 475.0, summary.line()
    assert summary.device == "cpu"  # the shared weights live in CPU memory


@pytest.mark.parametrize(
    ("sig", "named", "stall"),
    [
        (signal.SIGKILL, r"worker \d \(pid \d+\) was killed by signal 9", 0.0),
        (signal.SIGSTOP, r"is alive but has sent nothing for \d+ s", 4.0),  # alive, silent
    ],
    ids=["killed", "stuck"],
)
def test_a_killed_or_stuck_hogwild_worker_is_named_and_the_shared_weights_save_whole(
    tmp_path, monkeypatch, sig, named, stall
):
    """One worker killed or stopped at any moment, maybe half-way through its step on the shared
    weights, while the other goes on updating: the run names it within the stall limit, and the
    checkpoint it saves loads, every weight finite."""
    training, hit = threading.Event(), {}

    def callback(progress):
        if progress.updates >= 10:
            training.set()

    def signal_one_worker():
        assert training.wait(120), "the workers never made 10 updates"
        if stall:  # shortened only now, so a slow start-up cannot trip it first
            monkeypatch.setattr(lib.pool, "STALL_SECONDS", stall)
        victim = workers_of()[0]
        hit["time"], hit["pid"] = time.monotonic(), victim.pid
        victim.send_signal(sig)

    threading.Thread(target=signal_one_worker, daemon=True).start()
    with pytest.raises(WorkerError, match=named) as err:
        train(hogwild(), run_dir=tmp_path, progress=False, callback=callback)
    assert time.monotonic() - hit["time"] < stall + 30 and str(hit["pid"]) in str(err.value)
    summary = Summary.load(tmp_path / "summary.json")
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert summary.stop_reason == "error" and state["frames"] == summary.frames
    assert state["updates"] >= 10 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_nan_in_a_worker_stops_the_run_before_the_step_and_keeps_the_weights(tmp_path):
    with pytest.raises(WorkerError, match="loss is nan"):
        train(hogwild(env_id="toy_envs:NanReward-v0"), run_dir=tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert state["updates"] == 0  # the bad update was never applied


def test_an_update_whose_report_was_lost_counts_in_the_checkpoint_and_the_summary(tmp_path):
    """Worker 0 updates twice and reports once, worker 1 updates once and reports it; the
    second report of worker 0 is lost as the workers stop. Three updates moved the weights:
    last.pt and summary.json both say 3, not the 2 that were reported."""
    step, record = learner(hogwild(), tmp_path)
    counts = step.shared.counts
    for worker_id in (0, 1):
        counts.add(worker_id)
        assert feed(step, record, Applied(worker_id, 32, {}, 0, 0))
    counts.add(0)  # its Applied never arrives
    assert record.updates == 2
    summary = finish(record, "interrupted")
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["updates"] == summary.updates == 3 and summary.frames == last["frames"] == 64


def test_a_resumed_hogwild_run_goes_on_with_its_weights_moments_and_count(tmp_path):
    first = train(hogwild(max_frames=3_000), run_dir=tmp_path / "a", progress=False)
    ckpt = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    config = hogwild(max_frames=6_000)
    step = HogwildStep(config, make_net(config, *obs_shape_and_actions(config.env_id)))
    step.restore(ckpt)  # into the shared tensors the workers will get
    assert step.updates == first.updates == ckpt["updates"]
    assert all(torch.equal(p, ckpt["model"][k]) for k, p in step.net.state_dict().items())
    saved = ckpt["optimizer"]["state"]
    assert all(
        torch.equal(s[name], saved[i][name])
        for i, s in enumerate(step.shared.optimizer_state)
        for name in ("step", "exp_avg", "exp_avg_sq")
    )
    second = train(
        config, run_dir=tmp_path / "b", progress=False, resume=tmp_path / "a/checkpoints/last.pt"
    )
    assert second.frames >= 6_000 and second.updates > first.updates


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "ray"], "hogwild has every worker write the network in this machine"),
        (["--device", "cuda"], "hogwild trains in the workers, on the CPU"),
    ],
)
def test_hogwild_where_it_cannot_run_is_refused_before_anything_starts(args, message, capsys):
    from lib.train import main

    with pytest.raises(SystemExit) as exc:
        main(["--preset", "cartpole", "--variant", "hogwild", *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err
