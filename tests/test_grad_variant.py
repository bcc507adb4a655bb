"""Gradient-parallel A3C (`variant="grad"`): workers send gradients, the learner averages and
steps. Its gradients must be the learner's own, and it must learn like the data variant."""

import numpy as np
import pytest
import torch
from learner_parts import cartpole_batch, feed, finish, learner

from lib import get_preset
from lib.a2c import a2c_update
from lib.a3c import train
from lib.config import ConfigError, override
from lib.messages import Gradients, MicroBatch
from lib.model import MlpA2C
from lib.plots import read_scalars
from lib.pool import WorkerPool
from lib.worker import gradient_message, run_worker


def test_a_workers_gradient_is_the_one_the_learner_computes_on_the_same_batch_and_weights():
    torch.manual_seed(0)
    net = MlpA2C((4,), 2, hidden_size=16)
    batch = cartpole_batch(32, seed=1)
    config = get_preset("cartpole")
    message = gradient_message(3, net, "cpu", config, batch, 7, 2)
    assert (message.worker_id, message.frames, message.weights_version, message.bootstrap_age) == (
        3,
        32,
        7,
        2,
    )
    assert all(p.grad is None for p in net.parameters())  # nothing left on the shared net

    # the learner's way: a2c_update's backward, with a step that changes nothing and no clip
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    loss, _ = a2c_update(
        net, optimizer, batch, 0.01, clip_grad=1e9, value_coef=config.value_loss_coef
    )
    for sent, p in zip(message.grads, net.parameters(), strict=True):
        assert sent.dtype == np.float32 and sent.shape == tuple(p.shape)
        np.testing.assert_allclose(sent, p.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert message.stats["losses/total"] == pytest.approx(loss.total.item(), rel=1e-6)


def test_the_mean_of_micro_batch_gradients_makes_the_data_variants_update(tmp_path):
    """Two micro-batches of 32 and one batch of 64 at the same weights: the mean of the two
    gradients is the gradient of the mean over 64, so both learners take the same step."""
    config = get_preset("cartpole", batch_size=64, micro_batch_size=32)
    data, data_record = learner(config, tmp_path / "data")
    grad, grad_record = learner(override(config, variant="grad"), tmp_path / "grad")
    for a, b in zip(data.net.parameters(), grad.net.parameters(), strict=True):
        assert torch.equal(a, b)  # the same seed, the same start
    halves = [cartpole_batch(32, seed=s) for s in (1, 2)]
    for half in halves:
        feed(data, data_record, MicroBatch(0, *(t.numpy() for t in half)))
        feed(grad, grad_record, gradient_message(0, grad.net, "cpu", config, half, 0, 0))
    assert data.updates == grad.updates == 1 and data_record.frames == grad_record.frames == 64
    for a, b in zip(data.net.parameters(), grad.net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for record in (data_record, grad_record):
        finish(record)
    logged = read_scalars(tmp_path / "grad", ["losses/total", "perf/policy_lag_mean"])
    assert len(logged["losses/total"][1]) == 1  # the workers' loss parts reach TensorBoard


def test_a_gradients_policy_lag_is_its_datas_age_and_its_gradient_lag_its_weights_age(tmp_path):
    """Worked by hand: one gradient per update. Each gradient's data began at update 0; the
    gradients were taken at the weights of updates 0, 1 and 1. At updates 0, 1 and 2 the
    policy lags are 0, 1, 2 (mean 1, max 2) and the gradient lags 0, 0, 1 (mean 1/3)."""
    config = get_preset("cartpole", batch_size=32, micro_batch_size=32, variant="grad")
    step, record = learner(config, tmp_path)
    batch = cartpole_batch(32, seed=1)
    for weights in (0, 1, 1):
        message = gradient_message(0, step.net, "cpu", config, batch, weights, 0)
        feed(step, record, message._replace(first_version=0))
    assert step.updates == 3
    finish(record)
    tags = ["perf/policy_lag_mean", "perf/policy_lag_max", "perf/gradient_lag_mean"]
    logged = read_scalars(tmp_path, tags)
    assert [logged[t][1].tolist() for t in tags[:2]] == [[1.0], [2.0]]
    assert logged["perf/gradient_lag_mean"][1].tolist() == pytest.approx([1 / 3])


def test_a_spawned_grad_worker_sends_one_gradient_per_parameter():
    config = get_preset("cartpole", variant="grad", processes=1, envs_per_process=2)
    net = MlpA2C((4,), 2, hidden_size=config.hidden_size).share_memory()
    pool = WorkerPool(config, net, "cpu", run_worker)
    pool.start()
    try:
        item, size = None, 0
        for _ in range(120):
            pool.check()
            before = pool.bytes_delivered
            item = pool.get(timeout=1.0)
            size = pool.bytes_delivered - before
            if isinstance(item, Gradients):
                break
        assert isinstance(item, Gradients), "the worker never sent a gradient"
        shapes = [tuple(p.shape) for p in net.parameters()]
        assert [g.shape for g in item.grads] == shapes
        # what crossed the pipe: a float32 per parameter, plus the seven logged loss parts
        # and the pickle's framing (about a hundred bytes a parameter tensor and a stat)
        param_bytes = 4 * sum(p.numel() for p in net.parameters())
        assert param_bytes <= size <= param_bytes + 2048, (size, param_bytes)
        assert item.frames == config.micro_batch_size
        assert all(np.isfinite(g).all() for g in item.grads)
    finally:
        pool.stop()


def test_an_unknown_variant_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match=r"variant='shared'.*\('data', 'grad', 'hogwild'\)"):
        get_preset("cartpole", variant="shared")


@pytest.mark.slow
def test_gradient_parallel_a3c_learns_cartpole_to_475(tmp_path):
    config = get_preset("cartpole", variant="grad", max_frames=3_000_000)
    summary = train(config, run_dir=tmp_path, progress=False)
    assert summary.solved, summary.line()
    assert summary.mean_score >= 475.0
    tags = ["losses/entropy", "losses/grad_norm", "perf/policy_lag_mean", "perf/fps"]
    assert set(read_scalars(tmp_path, tags)) == set(tags)
