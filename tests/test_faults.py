"""Faults with real processes and real signals: nothing hangs, nothing is orphaned or lost."""

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from learner_parts import endless_cartpole
from procs import alive, blocked_in_pipe_write, restore_sigint, wait_for, workers_of
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lib.pool
from lib import get_preset
from lib.a2c import NumericalError
from lib.a3c import WorkerError, train
from lib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lib.tracking import Summary

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("no_workers_left")


cartpole = endless_cartpole


def trained(event: threading.Event):
    """A callback that sets `event` once the learner has made an update."""

    def callback(progress):
        if progress.updates:
            event.set()

    return callback


def test_killed_worker_is_reported_quickly(tmp_path):
    killed_at = {}
    training = threading.Event()

    def kill_one_worker():
        assert training.wait(120), "the learner never made an update"
        victim = workers_of()[0]
        killed_at["time"], killed_at["pid"] = time.monotonic(), victim.pid
        victim.send_signal(signal.SIGKILL)

    threading.Thread(target=kill_one_worker, daemon=True).start()
    with pytest.raises(WorkerError, match=r"worker \d \(pid \d+\) was killed by signal 9") as err:
        train(cartpole(), run_dir=tmp_path, progress=False, callback=trained(training))
    noticed_after = time.monotonic() - killed_at["time"]
    assert noticed_after < 30  # a check every second; generous for a busy machine
    assert str(killed_at["pid"]) in str(err.value)
    summary = Summary.load(tmp_path / "summary.json")
    assert summary.stop_reason == "error" and "WorkerError" in summary.error
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["frames"] == summary.frames


@pytest.mark.timeout(120)
def test_worker_killed_in_the_middle_of_a_message_does_not_hang_the_learner(tmp_path):
    """A Pong micro-batch (0.9 MB) is far bigger than a pipe's buffer, so while the learner
    sleeps in its callback a worker blocks half-way through sending one. A worker killed there
    left one shared multiprocessing.Queue with half a message and a held write lock, and the
    learner waited forever (2 of 6 random kills of one Pong worker before the fix)."""
    victim = {}

    def callback(progress):
        if progress.updates and not victim:
            # the learner reads nothing while it is here: wait until every worker is blocked
            # part-way through sending, then kill them there
            assert wait_for(lambda: all(map(blocked_in_pipe_write, workers_of())), 60)
            for worker in workers_of():
                victim[worker.pid] = worker
                worker.send_signal(signal.SIGKILL)
            assert wait_for(lambda: not any(map(alive, victim.values())), 30)

    config = get_preset("pong", processes=2, envs_per_process=2, max_frames=10**9)
    with pytest.raises(WorkerError, match=r"killed by signal 9") as err:
        train(config, run_dir=tmp_path, progress=False, callback=callback, callback_seconds=0.5)
    assert len(victim) == 2 and any(str(pid) in str(err.value) for pid in victim)


def test_stuck_workers_stop_the_run_instead_of_hanging_it(tmp_path, monkeypatch):
    stopped = []
    training = threading.Event()

    def stop_every_worker():  # SIGSTOP: alive, silent, and deaf to SIGTERM
        assert training.wait(120), "the learner never made an update"
        # shortened only now, so a slow start-up cannot trip it before the workers are stopped
        monkeypatch.setattr(lib.pool, "STALL_SECONDS", 4.0)
        for worker in workers_of():
            worker.send_signal(signal.SIGSTOP)
            stopped.append((time.monotonic(), worker.pid))

    threading.Thread(target=stop_every_worker, daemon=True).start()
    with pytest.raises(WorkerError, match=r"is alive but has sent nothing for \d+ s") as err:
        train(cartpole(), run_dir=tmp_path, progress=False, callback=trained(training))
    assert time.monotonic() - stopped[0][0] < 4.0 + 30  # the limit, a check, and the clean-up
    assert any(str(pid) in str(err.value) for _, pid in stopped)
    assert Summary.load(tmp_path / "summary.json").stop_reason == "error"
    # the stopped workers were killed (the autouse fixture checks that none is left)


@pytest.mark.timeout(180)
def test_worker_frozen_in_the_middle_of_a_message_is_named(tmp_path, monkeypatch):
    """A worker stopped (SIGSTOP) part-way through sending a Pong micro-batch leaves half a
    message in its pipe. Read on the learner's own thread, that read never returned and the
    stall check never ran. With a reader thread per pipe, only that reader waits."""
    frozen = {}

    def callback(progress):
        if progress.updates and not frozen:
            # the learner reads nothing while it is here, so the workers block mid-send
            assert wait_for(lambda: all(map(blocked_in_pipe_write, workers_of())), 60)
            for worker in workers_of():
                worker.send_signal(signal.SIGSTOP)
                frozen[worker.pid] = time.monotonic()
            monkeypatch.setattr(lib.pool, "STALL_SECONDS", 5.0)

    config = get_preset("pong", processes=2, envs_per_process=2, max_frames=10**9)
    with pytest.raises(WorkerError, match=r"is alive but has sent nothing for \d+ s") as err:
        train(config, run_dir=tmp_path, progress=False, callback=callback, callback_seconds=0.5)
    assert time.monotonic() - min(frozen.values()) < 5.0 + 30
    assert any(str(pid) in str(err.value) for pid in frozen)
    assert Summary.load(tmp_path / "summary.json").stop_reason == "error"


def test_worker_exception_carries_its_traceback(tmp_path):
    config = cartpole(env_id="toy_envs:Crash-v0")
    with pytest.raises(WorkerError, match="boom: CrashEnv failed on purpose") as err:
        train(config, run_dir=tmp_path, progress=False)
    assert "Traceback" in str(err.value) and "CrashEnv" in str(err.value)


def test_segfaulting_worker_is_named_with_its_signal(tmp_path):
    config = cartpole(env_id="toy_envs:Segfault-v0")
    with pytest.raises(WorkerError, match=r"worker \d \(pid \d+\) was killed by signal 11"):
        train(config, run_dir=tmp_path, progress=False)


def test_checkpoint_is_saved_periodically_while_training(tmp_path):
    seen, stopped = [], []

    def look(progress):
        ckpt = tmp_path / "checkpoints" / "last.pt"
        if ckpt.exists():
            seen.append((progress.frames, load_checkpoint(ckpt)["frames"]))
        if len({saved for _, saved in seen}) >= 3 and not stopped:  # evidence enough
            stopped.append(True)
            raise KeyboardInterrupt  # ends the run the way Ctrl+C does

    config = cartpole(checkpoint_minutes=0.02)  # every 1.2 s
    summary = train(config, run_dir=tmp_path, progress=False, callback=look, callback_seconds=1)
    assert summary.stop_reason == "interrupted"
    during = [saved for now, saved in seen[:-1]]  # the last callback comes after the exit save
    assert len(set(during)) >= 2, seen  # several different saves before the run ended
    # a save can land in the very turn the run stops in (the loop saves, then calls back)
    assert all(0 < saved <= summary.frames for saved in during)


def test_nan_loss_stops_training_and_keeps_a_good_checkpoint(tmp_path):
    config = cartpole(env_id="toy_envs:NanReward-v0")
    with pytest.raises(NumericalError, match="loss is nan"):
        train(config, run_dir=tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert state["updates"] == 0  # the bad update was never applied


def _start_cli(tmp_path, *extra):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lib.train",
            "--preset",
            "cartpole",
            "--processes",
            "2",
            "--run-dir",
            str(run_dir),
            "--no-progress",
            "--checkpoint-minutes",
            "0.01",
            "--stop-score",
            "1e9",  # never solved: on a slow machine the run must not end before the test acts
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=restore_sigint,  # Ctrl+C must reach it even if this suite runs in the background
    )
    assert wait_for(lambda: len(workers_of(proc.pid)) == 2, 60), "workers did not start"
    workers = workers_of(proc.pid)
    # evidence that the learner has trained: a checkpoint is written only after an update
    assert wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), 120), "no update"
    return proc, workers, run_dir


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_cli_leaves_no_worker_and_saves(tmp_path, how):
    shm_before = set(os.listdir("/dev/shm"))
    proc, workers, run_dir = _start_cli(tmp_path)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl+C reaches the whole group
    else:
        proc.send_signal(signal.SIGTERM)  # only the learner
    # bounded: 5 s for the workers to stop, then the saves; generous for a starved machine
    out, err = proc.communicate(timeout=120)
    assert not any(alive(w) for w in workers), "the learner exited and left workers behind"
    assert proc.returncode == 130, err
    assert "interrupted" in out
    assert set(os.listdir("/dev/shm")) - shm_before == set(), "leaked shared-memory segments"
    summary = Summary.load(run_dir / "summary.json")
    assert summary.stop_reason == "interrupted" and summary.frames > 0
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == summary.frames


def test_killed_learner_does_not_orphan_its_workers(tmp_path):
    proc, workers, _ = _start_cli(tmp_path)
    proc.send_signal(signal.SIGKILL)  # no clean-up code runs in the learner at all
    proc.wait(timeout=10)
    assert wait_for(lambda: not any(alive(w) for w in workers), 30), "orphaned workers"


def test_resume_continues_counters_and_refuses_another_preset(tmp_path):
    first = train(cartpole(max_frames=3_000), run_dir=tmp_path / "a", progress=False)
    ckpt = tmp_path / "a" / "checkpoints" / "last.pt"
    before = load_checkpoint(ckpt)
    second = train(cartpole(max_frames=6_000), run_dir=tmp_path / "b", progress=False, resume=ckpt)
    after = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert first.frames >= 3_000 and second.frames >= 6_000
    assert second.updates > first.updates  # counted on from the checkpoint
    assert after["episodes"] >= before["episodes"]
    step_before = before["optimizer"]["state"][0]["step"].item()
    assert after["optimizer"]["state"][0]["step"].item() == step_before + (
        second.updates - first.updates
    )
    # TensorBoard steps go on from the checkpoint's frame count
    acc = EventAccumulator(str(tmp_path / "b"))
    acc.Reload()
    assert min(e.step for e in acc.Scalars("losses/total")) > before["frames"]
    with pytest.raises(CheckpointError, match="preset 'cartpole'.*--preset"):
        train(get_preset("pong", processes=1), run_dir=tmp_path / "c", resume=ckpt)
    assert workers_of() == []


def _cli(*args, timeout=300):
    out = subprocess.run(
        [sys.executable, "-m", "lib.train", "--no-progress", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_resume_from_a_run_folder_continues_its_curve_in_the_same_folder(tmp_path):
    """Stop a run, resume it by its folder alone: it goes on with its own settings, no frame is
    lost beyond the checkpoint, and the curve (curve.json, TensorBoard, summary) goes on where it
    stopped."""
    run = tmp_path / "run"
    own = ["--stop-score", "1e9", "--value-loss-coef", "0.25"]
    _cli(
        "--preset", "cartpole", "--envs", "4", *own, "--run-dir", str(run), "--max-frames", "20000"
    )
    first = json.loads((run / "curve.json").read_text())
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert first["frames"] == saved["frames"] >= 20_000 and first["points"]
    out = _cli("--resume", str(run), "--max-frames", "40000")  # no --preset, no settings
    assert "preset cartpole, value_loss_coef=0.25, stop_score=1000000000.0" in out.stderr
    assert "changed here: max_frames=40000" in out.stderr
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")["config"]
    assert (resumed["value_loss_coef"], resumed["stop_score"]) == (0.25, 1e9)
    assert resumed["envs_per_process"] == get_preset("cartpole").envs_per_process  # not 4
    second = json.loads((run / "curve.json").read_text())
    summary = Summary.load(run / "summary.json")
    assert second["points"][: len(first["points"])] == first["points"]  # the same start
    new = second["points"][len(first["points"]) :]
    assert new and new[0]["frames"] >= saved["frames"]  # counted on from the checkpoint
    assert new[0]["seconds"] >= first["seconds"]  # the clock goes on, it does not restart
    assert second["frames"] == summary.frames >= 40_000
    assert summary.wall_seconds + 0.05 >= second["points"][-1]["seconds"]  # curve: 0.1 s steps
    assert summary.episodes == len(second["points"])
    # one TensorBoard folder whose steps go on past the first run's frames
    acc = EventAccumulator(str(run))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("charts/episode_score")]
    assert min(steps) < saved["frames"] < max(steps)


def test_resume_refuses_another_network_shape(tmp_path):
    train(cartpole(max_frames=600), run_dir=tmp_path / "a", progress=False)
    other = cartpole(hidden_size=64)
    with pytest.raises(CheckpointError, match="network mlp/128"):
        train(other, run_dir=tmp_path / "b", resume=tmp_path / "a" / "checkpoints" / "last.pt")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing"])
def test_damaged_checkpoint_gives_a_clear_error(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_checkpoint(
        path, {"model": {"w": torch.ones(1000)}, "config": {}, "obs_shape": [4], "n_actions": 2}
    )
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    with pytest.raises(CheckpointError, match="truncated, corrupt|does not exist"):
        load_checkpoint(path)


def test_cli_resume_from_damaged_checkpoint_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02garbage")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lib.train",
            "--preset",
            "cartpole",
            "--resume",
            str(bad),
            "--run-dir",
            str(tmp_path / "r"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "cannot be read" in out.stderr and "Traceback" not in out.stderr


SAVER = """
import sys, torch
from lib.checkpoint import save_checkpoint
big = {"w": torch.full((8_000_000,), 2.0)}
while True:
    save_checkpoint(sys.argv[1], {"model": big, "config": {}, "obs_shape": [4], "n_actions": 2,
                                  "frames": 2})
"""


def test_kill_during_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(
        path,
        {
            "model": {"w": torch.ones(3)},
            "config": {},
            "obs_shape": [4],
            "n_actions": 2,
            "frames": 1,
        },
    )
    saving = lambda: any(tmp_path.glob("last.pt.*.tmp"))  # noqa: E731
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], cwd=ROOT)
        assert wait_for(saving, 120, interval=0.01), "the saver never started a save"
        proc.kill()  # while a save is under way
        proc.wait()
        state = load_checkpoint(path)  # never a half-written file
        assert state["frames"] in (1, 2)
        for tmp in tmp_path.glob("last.pt.*.tmp"):  # what the killed save left
            tmp.unlink()


def test_many_micro_batches_do_not_leak_descriptors_or_memory(tmp_path):
    # Earlier tests leave networks in reference cycles (their tracebacks); each shared-memory
    # tensor holds a descriptor. Collected mid-run, they would show as a drop of ~16 here.
    gc.collect()
    me = psutil.Process()
    shm_before = set(os.listdir("/dev/shm"))
    samples = []

    def sample(progress):
        samples.append((progress.frames, me.num_fds(), me.memory_info().rss))

    # micro-batches of 4 samples: 20k frames push 5,000 of them through the queue
    config = cartpole(micro_batch_size=4, batch_size=16, max_frames=20_000)
    summary = train(config, run_dir=tmp_path, progress=False, callback=sample, callback_seconds=0.5)
    assert summary.frames >= 20_000
    steady = samples[1:-1]
    assert len(steady) >= 3, samples
    fds = [s[1] for s in steady]
    rss = [s[2] for s in steady]
    assert max(fds) - min(fds) <= 2, f"open descriptors grew: {fds}"
    assert max(rss) - rss[0] < 64 * 2**20, f"memory grew: {rss}"
    assert set(os.listdir("/dev/shm")) - shm_before == set()


def _run_in_kernel(kc, code: str, timeout: float = 120) -> str:
    """Execute `code` in a Jupyter kernel; return its stdout, raising on an error reply."""
    msg_id = kc.execute(code)
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            raise AssertionError("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)
    raise TimeoutError(code)


def test_jupyter_interrupt_button_stops_workers_and_the_kernel_stays_usable(tmp_path):
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(ROOT))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kernel_pid = km.provisioner.process.pid
        setup = "from lib import get_preset\nfrom lib.a3c import train\n"
        run = (
            "s = train(get_preset('cartpole', processes=2, envs_per_process=2, "
            "max_frames={frames}, checkpoint_minutes=0.01, stop_score=1e9), "
            "run_dir=r'{run_dir}', progress=False)\n"
            "print(s.stop_reason, s.frames)"
        )
        _run_in_kernel(kc, setup)
        msg_id = kc.execute(run.format(frames=10**9, run_dir=tmp_path / "a"))
        assert wait_for(lambda: len(workers_of(kernel_pid)) == 2, 60)
        workers = workers_of(kernel_pid)
        # evidence that it trains: a checkpoint is written only after an update
        assert wait_for(lambda: (tmp_path / "a" / "checkpoints" / "last.pt").exists(), 120)
        km.interrupt_kernel()  # what the notebook's stop button does
        sent = time.monotonic()
        text = ""
        while "interrupted" not in text and time.monotonic() - sent < 120:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                text += msg["content"]["text"]
        assert text.startswith("interrupted"), text
        # train() reaps its workers before it prints the summary
        assert not any(alive(w) for w in workers)
        fds_after_interrupt = psutil.Process(kernel_pid).num_fds()
        # the same kernel trains again, and gives back what it opened
        again = _run_in_kernel(kc, run.format(frames=2_000, run_dir=tmp_path / "b"))
        assert again.startswith("max_frames")
        assert workers_of(kernel_pid) == []
        assert psutil.Process(kernel_pid).num_fds() - fds_after_interrupt <= 2
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_script_without_main_guard_gets_told_how_to_fix_it(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from lib import get_preset\nfrom lib.a3c import train\n"
        "train(get_preset('cartpole', processes=1, envs_per_process=1, max_frames=1000),"
        f" run_dir=r'{tmp_path / 'run'}', progress=False)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1
    assert "if __name__ == '__main__':" in out.stderr.splitlines()[-1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_first_signal_lets_the_learner_finish_what_it_is_doing(signum, tmp_path, sigint_enabled):
    """A signal only raises a flag: the code it lands in runs on (here, the callback's next
    line), and the loop ends the run at its next turn. A handler that raised there once broke
    TensorBoard's writer half-way through a `queue.put`, and the run died without its summary."""
    after_the_signal = []

    def callback(progress):
        if progress.updates and not after_the_signal:
            os.kill(os.getpid(), signum)  # the handler runs before os.kill returns
            after_the_signal.append(progress.updates)

    before = signal.getsignal(signal.SIGTERM)
    summary = train(cartpole(), run_dir=tmp_path, progress=False, callback=callback)
    assert after_the_signal, "the callback was cut short by the signal"
    assert summary.stop_reason == "interrupted"
    assert Summary.load(tmp_path / "summary.json").stop_reason == "interrupted"
    # restored after the run (a Ray cluster started earlier in this process may have set one)
    assert signal.getsignal(signal.SIGTERM) is before
