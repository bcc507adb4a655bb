"""The Ray backend on a real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`):
CartPole learns across both nodes with an actor SIGKILLed mid-run, the restart limit stops the
run with a clear error, and a run that started its own Ray instance leaves no process behind.

The tests share one cluster (starting one takes about 10 s on 2 cores). `make test-min` leaves
this file out: Ray is an optional extra, and the lowest versions are those of the core course.
"""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import ray
import torch
from procs import alive, restore_sigint, wait_for
from ray.cluster_utils import Cluster
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lib import get_preset, make_net
from lib.a3c import WorkerError, train
from lib.envs import obs_shape_and_actions
from lib.ray_pool import weights_bytes
from lib.tracking import Summary

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.ray  # `make test` runs these alone (pyproject.toml: markers)
STORE = 80 * 2**20
"""Object store per node: plenty for CartPole's messages, light on a small machine."""


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one CPU each: the two worker actors land one per node."""
    c = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 1, "object_store_memory": STORE, "include_dashboard": False},
    )
    c.add_node(num_cpus=1, object_store_memory=STORE)
    c.wait_for_nodes()
    yield c
    c.shutdown()


def ray_workers(root: int | None = None) -> list[psutil.Process]:
    """Live worker actors (process title `ray::RayWorker...`) below `root` (default: here)."""
    found = []
    for p in psutil.Process(root).children(recursive=True):
        try:
            if "ray::RayWorker" in " ".join(p.cmdline()) and alive(p):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            pass
    return found


def cartpole_net():
    config = get_preset("cartpole")
    return make_net(config, *obs_shape_and_actions(config.env_id))


def test_weights_travel_as_one_pickle_of_4_bytes_a_parameter_that_loads_back():
    net = cartpole_net()
    params = sum(p.numel() for p in net.parameters())
    assert params == 17_539  # MlpA2C(4 -> 128 -> 2 and 1), worked out in notebook 7
    data = weights_bytes(net)
    assert 4 * params < len(data) < 4 * params + 2048  # float32s, plus names and headers
    other = cartpole_net()
    state = pickle.loads(data)
    for name, tensor in other.state_dict().items():
        tensor.copy_(torch.from_numpy(state[name]))
    for a, b in zip(net.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def scalars(run_dir: Path, tag: str) -> list[float]:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def kill_one_actor_after(frames: int, killed: list[int], times: list[float] | None = None):
    """A callback that SIGKILLs one worker actor once the learner has `frames` frames (and
    notes when the learner loop called it, in `times`)."""

    def callback(progress):
        if times is not None:
            times.append(time.monotonic())
        if not killed and progress.frames >= frames:
            victim = ray_workers()[0]
            killed.append(victim.pid)
            victim.send_signal(signal.SIGKILL)

    return callback


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_cartpole_learns_on_two_nodes_and_a_killed_actor_is_restarted(cluster, tmp_path):
    config = get_preset("cartpole", seed=1)
    killed: list[int] = []
    times: list[float] = []
    summary = train(
        config,
        run_dir=tmp_path,
        progress=False,
        backend="ray",
        address=cluster.address,
        callback=kill_one_actor_after(100_000, killed, times),
        callback_seconds=0.5,
    )
    print(f"\nRay CartPole: {summary.line()}")  # frames to solve vary: 44-140 s on 2 cores
    assert killed, "the run ended before an actor could be killed"
    # the actor died during a `next` call (one is always in flight): the learner loop kept
    # turning, every half second or so, while Ray restarted it
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 10
    assert summary.solved and summary.mean_score >= 475, summary.line()
    assert summary.worker_restarts == 1
    # one actor per node: two node ids (cluster_utils puts both nodes on one IP)
    assert len(summary.worker_nodes) == 2 and len(set(summary.worker_nodes)) == 2
    assert scalars(tmp_path, "perf/worker_restarts") == [1.0]
    # up: 8 micro-batches of 32 samples per update, each 32 x (4 + 1 + 1) numbers plus framing
    assert 8 * 32 * 6 * 4 < summary.bytes_per_update < 8 * (32 * 6 * 8 + 2048)
    # down: one copy of the weights per update at most (put when a call goes out after one)
    weights = len(weights_bytes(cartpole_net()))
    assert weights / 2 < summary.weights_bytes_per_update <= weights
    assert json.loads((tmp_path / "summary.json").read_text())["worker_restarts"] == 1
    assert not ray.is_initialized()  # the run disconnected; the cluster stays up
    assert wait_for(lambda: killed[0] not in [p.pid for p in ray_workers()], 30)


@pytest.mark.timeout(240)
def test_past_the_restart_limit_the_run_stops_naming_the_actor_and_node(cluster, tmp_path):
    config = get_preset("cartpole", max_frames=10**9, stop_score=1e9)
    killed: list[int] = []
    with pytest.raises(WorkerError) as err:
        train(
            config,
            run_dir=tmp_path,
            progress=False,
            backend="ray",
            address=cluster.address,
            max_restarts=0,
            callback=kill_one_actor_after(1, killed),
            callback_seconds=0.2,
        )
    message = str(err.value)
    assert killed
    assert re.search(r"worker \d \(Ray actor [0-9a-f]{12} on node .+ \([0-9a-f]{8}\)\)", message)
    assert "died and Ray did not restart it" in message
    assert "the limit is 0 restarts (--max-restarts)" in message
    summary = Summary.load(tmp_path / "summary.json")
    assert summary.stop_reason == "error" and "WorkerError" in summary.error
    assert wait_for(lambda: ray_workers() == [], 30), "the run left worker actors behind"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["Ctrl+C"])
def test_an_interrupted_run_leaves_no_ray_process_behind(how, tmp_path, sigint_enabled):
    """A run without --address starts its own Ray instance (raylet, GCS, actors); Ctrl+C to the
    terminal's whole process group ends it all. (SIGTERM to the learner alone, at each stage of
    the clean-up, is tested on the shared cluster below.)"""
    cmd = [sys.executable, "-m", "lib.train", "--preset", "cartpole", "--backend", "ray"]
    cmd += ["--max-frames", "0", "--stop-score", "1e9", "--no-progress", "--run-dir", tmp_path]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=restore_sigint,
    )
    seen: set[psutil.Process] = set()

    def asking():  # an actor runs `next`: the pool has started and the learner is reading
        tree = psutil.Process(proc.pid).children(recursive=True)
        seen.update(tree)
        return any("RayWorker.next" in " ".join(p.cmdline()) for p in ray_workers(proc.pid))

    try:
        assert wait_for(asking, 120), "the run's actors never started"
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out.decode()[-2000:]
    assert Summary.load(tmp_path / "summary.json").stop_reason == "interrupted"
    assert len(seen) >= 4  # GCS, raylet, two actors at least
    assert wait_for(lambda: not any(alive(p) for p in seen), 60), [
        " ".join(p.cmdline())[:80] for p in seen if alive(p)
    ]


def test_the_core_course_never_imports_ray():
    code = (
        "import sys, lib, lib.a3c, lib.train, lib.update, lib.record, lib.worker, lib.plots; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_without_ray_the_backend_is_refused_with_the_install_line():
    """`sys.modules["ray"] = None` makes `import ray` fail, as in an environment without it."""
    code = (
        "import sys; sys.modules['ray'] = None; from lib.train import main; "
        "main(['--preset', 'cartpole', '--backend', 'ray'])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "pip install -e '.[distributed]'" in out.stderr
    assert "--backend local" in out.stderr


def test_address_without_the_ray_backend_is_refused(capsys):
    from lib.train import main

    with pytest.raises(SystemExit) as exc:
        main(["--preset", "cartpole", "--address", "127.0.0.1:6379"])
    assert exc.value.code == 2
    assert "--address joins a Ray cluster: it needs --backend ray" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "ray", "--max-restarts", "-1"], "max_restarts=-1 is invalid: must be >= 0"),
        (["--backend", "mpi"], "invalid choice: 'mpi'"),
    ],
)
def test_bad_backend_settings_are_refused_before_anything_starts(args, message, capsys):
    from lib.train import main

    with pytest.raises(SystemExit) as exc:
        main(["--preset", "cartpole", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_gradient_parallelism_trains_on_ray_actors(cluster, tmp_path):
    """New weights arrive on Ray's thread while the play thread may be between a forward pass
    and its backward pass; they are loaded between micro-batches. (Data parallelism on actors
    learns CartPole in the test above.)"""
    config = get_preset("cartpole", variant="grad", max_frames=40_000, stop_score=1e9)
    summary = train(
        config, run_dir=tmp_path, progress=False, backend="ray", address=cluster.address
    )
    assert summary.stop_reason == "max_frames" and summary.error is None, summary.line()
    # every update took a full batch: 40,000 frames make 156 updates of 256, and a few more
    # frames than 40,000 arrive with the update that reaches it
    assert summary.updates == summary.frames // config.batch_size >= 156
    lags = scalars(tmp_path, "perf/policy_lag_mean")
    # new weights keep reaching the workers: one that never loaded them would lag by every
    # update made so far (up to 156), where these means of 10 updates stay small
    assert lags and min(lags) >= 0 and max(lags) < 20


@pytest.mark.timeout(600)
def test_a_second_signal_at_any_stage_of_a_ray_runs_clean_up_still_saves_everything(
    cluster, tmp_path
):
    """The stages that call Ray's pool; the rest run the same code as on local workers."""
    from cleanup_signals import POOL_STAGES, folder
    from test_stopping import check_cleanup_signals, run_cleanup_signals

    output = run_cleanup_signals(tmp_path, "ray", cluster.address)
    check_cleanup_signals(tmp_path, output, tuple(map(folder, POOL_STAGES)))
    assert not (tmp_path / "saving_best.pt").exists()  # a stage Ray runs skip
    # the forced exit leaves its actors to Ray, which reaps them once it sees the driver gone:
    # seconds alone, longer on a busy machine; a leak would leave them for good
    start = time.monotonic()
    reaped = wait_for(lambda: ray_workers() == [], 120)
    print(f"actors reaped {time.monotonic() - start:.1f} s after the last run")
    assert reaped, f"a run left worker actors behind: {[p.pid for p in ray_workers()]}"
