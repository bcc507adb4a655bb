import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# The figures that one notebook draws each live beside the notebooks (`notebooks/figures.py`).
sys.path.insert(1, str(Path(__file__).parent.parent / "notebooks"))


@pytest.fixture
def sigint_enabled():
    """Python's own Ctrl+C handler for this test, whatever this process inherited.

    A shell starts a background job (`make test &`, `nohup ...`) with SIGINT ignored, and Python
    keeps it ignored: a test that sends SIGINT would then wait for ever. Tests of Ctrl+C ask
    for this fixture, and start their children with `procs.restore_sigint`.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def no_workers_left():
    """After the test, no spawned worker of this process is left (waits up to 30 s)."""
    from procs import wait_for, workers_of

    yield
    assert wait_for(lambda: workers_of() == [], 30), "a test left spawned workers behind"
