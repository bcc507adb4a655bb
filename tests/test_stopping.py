"""Signals during clean-up: a second Ctrl+C or SIGTERM at any stage still leaves summary.json
and a loadable last.pt; a third forces the exit and names what it skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cleanup_signals
from procs import restore_sigint

from lib.checkpoint import load_checkpoint
from lib.tracking import Summary

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "cleanup_signals.py"
STAGES = tuple(map(cleanup_signals.folder, cleanup_signals.STAGES))


def run_cleanup_signals(out: Path, backend: str, address: str | None = None) -> str:
    """Run `tests/cleanup_signals.py` and return its stdout and stderr (asserting exit 0)."""
    cmd = [sys.executable, str(SCRIPT), str(out), backend, *([address] if address else [])]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=540, preexec_fn=restore_sigint
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def check_cleanup_signals(out: Path, output: str, stages: tuple[str, ...] = STAGES) -> None:
    for stage in stages:
        assert f"{stage}: returned interrupted after 1 more" in output, output[-3000:]
        summary = Summary.load(out / stage / "summary.json")
        assert summary.stop_reason == "interrupted" and summary.frames > 0
        last = load_checkpoint(out / stage / "checkpoints" / "last.pt")
        assert last["frames"] == summary.frames and last["updates"] == summary.updates
    # the third signal, at the checkpoint's stage: nothing from there on was done
    assert "saving_last.pt_third: forced exit after 2 more" in output
    skipped = (
        "forced exit: skipped saving last.pt, saving best.pt, writing summary.json, "
        "closing the TensorBoard log, reaping the workers"
    )
    assert skipped in output, output[-3000:]
    assert "one more Ctrl+C forces the exit" in output  # what the second signal said
    third = out / "saving_last.pt_third"
    assert not (third / "summary.json").exists()
    assert not list((third / "checkpoints").glob("*.tmp"))  # no half-written file left


def test_a_second_signal_at_any_stage_of_the_clean_up_still_saves_everything(tmp_path):
    output = run_cleanup_signals(tmp_path, "local")
    check_cleanup_signals(tmp_path, output)
    # Hogwild: the shared weights and Adam state saved whole under a second signal
    assert "saving_last.pt_hogwild: returned interrupted after 1 more" in output
    run = tmp_path / "saving_last.pt_hogwild"
    summary = Summary.load(run / "summary.json")
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["updates"] == summary.updates > 0 and "optimizer" in last
