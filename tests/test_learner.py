"""The learner's halves on their own: the update step (batches, lag, the workers' weights) and
the run record (scores, the stop rules, checkpoints, summary)."""

import json

import pytest
import torch
import torch.multiprocessing as mp
from learner_parts import feed, finish, learner, micro_batch
from procs import report_weight_sums

from lib import get_preset
from lib.checkpoint import load_checkpoint
from lib.messages import EpisodeScores
from lib.model import MlpA2C
from lib.plots import read_scalars
from lib.update import WorkerWeights


def test_an_update_waits_for_a_full_batch_then_stops_at_max_frames(tmp_path):
    config = get_preset("cartpole", batch_size=64, micro_batch_size=32, max_frames=128)
    step, record = learner(config, tmp_path)
    before = [p.detach().clone() for p in step.net.parameters()]

    assert feed(step, record, micro_batch(32)) is False  # 32 of 64 frames
    assert (record.frames, step.updates) == (32, 0)
    assert feed(step, record, micro_batch(32)) is True  # 64: one update
    assert (record.frames, step.updates, record.updates) == (64, 1, 1)
    assert any(not torch.equal(a, b) for a, b in zip(before, step.net.parameters(), strict=True))
    assert record.limit_reached() is None

    feed(step, record, micro_batch(32))
    feed(step, record, micro_batch(32))
    assert (record.frames, step.updates) == (128, 2)
    assert record.limit_reached() == "max_frames"

    summary = finish(record, end=record.start + 2.0)
    assert summary.wall_seconds == 2.0 and summary.solved is False
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["updates"] == 2
    assert json.loads((tmp_path / "summary.json").read_text())["frames"] == 128


def test_scores_solve_once_the_window_mean_reaches_the_bound(tmp_path):
    config = get_preset("cartpole", score_window=3, stop_score=10.0)
    _, record = learner(config, tmp_path)

    assert record.add_scores(EpisodeScores(0, [12.0, 9.0], [12, 9])) is False  # window not full
    assert record.tracker.best_mean is None
    assert record.add_scores(EpisodeScores(1, [8.0], [8])) is False  # (12 + 9 + 8) / 3 = 9.67
    assert record.add_scores(EpisodeScores(0, [13.0], [13])) is True  # (9 + 8 + 13) / 3 = 10
    assert record.tracker.best_mean == 10.0
    assert record.scores == [12.0, 9.0, 8.0, 13.0]

    summary = finish(record, "solved", record.start + 1.0)
    assert summary.solved and summary.best_mean_score == 10.0 and summary.episodes == 4
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["best_mean_score"] == 10.0 and "optimizer" not in best


def test_shared_weights_are_the_learners_own_network_in_shared_memory():
    net = MlpA2C((4,), 2, hidden_size=8)
    weights = WorkerWeights(net, copied=False)
    assert weights.net is net and weights.device == "cpu"
    assert all(p.is_shared() for p in net.parameters())


def test_a_cpu_learner_shares_its_weights_whatever_the_worker_device(tmp_path):
    config = get_preset("cartpole", worker_device="cpu")
    step, record = learner(config, tmp_path)
    assert step.weights.net is step.net and not step.weights.copied
    record.close()


def test_a_spawned_worker_sees_the_copied_weights_only_after_publish():
    net = MlpA2C((4,), 2, hidden_size=8)
    weights = WorkerWeights(net, copied=True)  # what a GPU learner does with worker_device="cpu"
    assert weights.net is not net and weights.device == "cpu"
    n_weights = sum(p.numel() for p in net.parameters())

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=report_weight_sums, args=(weights.net, child), daemon=True)
    proc.start()
    try:
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(1.0)  # the learner's update
        parent.send("sum")
        assert parent.poll(60)
        assert parent.recv() != n_weights  # not published yet: the worker acts with old weights
        weights.publish(1)
        assert weights.version.value == 1
        parent.send("sum")
        assert parent.poll(60)
        assert parent.recv() == n_weights  # every weight is now 1.0 in the worker too
        parent.send(None)
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()


def test_policy_lag_is_the_learners_update_count_minus_each_micro_batchs_version(tmp_path):
    """Worked by hand: one micro-batch per update. Update 1 trains on data made with version
    0 (lag 0); update 2 on data made before update 1 (version 0, lag 1); update 3 on data
    made before both (version 0, lag 2). TensorBoard gets the mean of the three, and their
    maximum as the maximum."""
    config = get_preset("cartpole", batch_size=32, micro_batch_size=32)
    step, record = learner(config, tmp_path)
    assert step.weights.version.value == 0
    for age in (4, 0, 2):
        feed(step, record, micro_batch(32)._replace(first_version=0, bootstrap_age=age))
    assert step.updates == 3 and step.weights.version.value == 3  # published each time
    finish(record)
    tags = ["perf/policy_lag_mean", "perf/policy_lag_max", "perf/bootstrap_age"]
    scalars = read_scalars(tmp_path, tags)
    # (0+1+2)/3, max(0, 1, 2), (4+0+2)/3
    assert [scalars[t][1].tolist() for t in tags] == [[1.0], [2.0], [2.0]]


def test_a_resumed_learner_counts_versions_from_its_checkpoint(tmp_path):
    config = get_preset("cartpole", batch_size=32, micro_batch_size=32)
    step, record = learner(config, tmp_path / "a")
    feed(step, record, micro_batch(32))
    feed(step, record, micro_batch(32))
    finish(record)
    resumed, resumed_record = learner(config, tmp_path / "b", tmp_path / "a/checkpoints/last.pt")
    assert resumed.updates == resumed_record.updates == 2
    assert resumed.weights.version.value == 2
    assert all(
        torch.equal(a, b)
        for a, b in zip(step.net.parameters(), resumed.net.parameters(), strict=True)
    )
    resumed_record.close()


def test_an_annealed_rate_falls_by_each_updates_frames_and_resumes_where_it_was(tmp_path):
    """64-frame updates in a run of 256 frames at 0.002: the k-th update steps at
    0.002 * (1 - 64 (k - 1) / 256), so 0.002, 0.0015, then after a resume 0.001."""
    config = get_preset(
        "cartpole", batch_size=64, micro_batch_size=32, max_frames=256, lr_anneal=True
    )
    step, record = learner(config, tmp_path / "a")
    rates = []
    for _ in range(4):
        if update := step.add(micro_batch(32)):
            rates.append(update.means["losses/learning_rate"])
            assert step.optimizer.param_groups[0]["lr"] == rates[-1]
            record.updates = update.number
    assert rates == pytest.approx([0.002, 0.0015])
    finish(record)

    resumed, resumed_record = learner(config, tmp_path / "b", tmp_path / "a/checkpoints/last.pt")
    resumed.add(micro_batch(32))
    update = resumed.add(micro_batch(32))
    assert update.means["losses/learning_rate"] == pytest.approx(0.001)
    resumed_record.close()
    constant = learner(get_preset("cartpole", batch_size=32, max_frames=64), tmp_path / "c")
    assert constant[0].add(micro_batch(32)).means["losses/learning_rate"] == 0.002
    constant[1].close()


class ListPool:
    """A `lib.pool.Pool` that hands out the given messages, then nothing."""

    bytes_delivered = bytes_published = restarts = 0
    nodes = None
    local_workers = 0

    def __init__(self, messages):
        self.messages = list(messages)

    def check(self):
        pass

    def get(self, timeout):
        return self.messages.pop(0) if self.messages else None


def test_the_learner_loop_refuses_a_message_it_does_not_know(tmp_path):
    """An unknown message is an error, never taken for a micro-batch."""
    import pytest

    from lib.a3c import _Bar, learn
    from lib.stopping import StopRequest

    step, record = learner(get_preset("cartpole", batch_size=32, micro_batch_size=32), tmp_path)
    pool = ListPool([micro_batch(32), ("not", "a", "message")])
    with pytest.raises(TypeError, match="a worker sent a tuple, which is no message"):
        learn(step, record, pool, _Bar(record.config, record, False), StopRequest(), lambda: None)
    assert step.updates == 1  # the micro-batch before it was trained on
    record.close()
