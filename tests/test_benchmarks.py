"""The benchmarks' arithmetic, checked by hand, and their runs kept honest."""

import os
import signal

import pytest
from procs import wait_for, workers_of

from benchmarks.common import table, train_in_tmp
from benchmarks.scaling import layouts
from benchmarks.throughput import combined_ceiling
from lib import get_preset


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


def test_an_interrupted_run_stops_the_benchmark_instead_of_counting():
    """`train` returns normally on Ctrl+C; a benchmark must not record that run as a figure."""
    config = get_preset("cartpole", processes=1, envs_per_process=2, max_frames=0)
    sent = []

    def press_ctrl_c(progress):
        if progress.updates and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train_in_tmp(config, callback=press_ctrl_c, callback_seconds=0.5)
    assert sent and wait_for(lambda: workers_of() == [], 10)
