"""How a run stops: Ctrl+C and SIGTERM while training and while cleaning up.

While training, a first signal (Ctrl+C, Jupyter's stop button, SIGTERM) only raises a flag;
the learner loop ends the run at its next turn. A second one raises `TrainingTerminated` at
once, for a learner stuck in a call that never returns. Clean-up then runs its stages in
order (`Cleanup`): the checkpoint, `summary.json` and TensorBoard before the workers are
reaped, so that what matters most is saved first. Signals during clean-up do not interrupt it;
only a third signal, or a clean-up past `CLEANUP_SECONDS`, forces the exit, saying which stages
it skipped.

A handler that raises wherever the main thread happens to be can break a library half-way
through its own bookkeeping (a SIGTERM inside TensorBoard's `queue.put` once left its writer
thread failing), which is why the first signal only raises a flag. Handlers are installed in
the main thread only; a SIGINT that is ignored (a shell's background job) stays ignored.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

CLEANUP_SECONDS = 120.0
"""Past this, a clean-up that still runs is stuck: the process exits, naming what it skipped.
(Saving takes about a second; stopping workers at most about ten.)"""
FORCED_EXIT_CODE = 3
"""The exit status of a process whose clean-up overran `CLEANUP_SECONDS`."""


class TrainingTerminated(KeyboardInterrupt):
    """A second Ctrl+C or SIGTERM arrived before the learner loop saw the first; handled like
    Ctrl+C, so everything is still cleaned up."""


class ForcedExit(KeyboardInterrupt):
    """A third signal during clean-up: the stages not yet done are skipped."""


class StopRequest:
    """Counts the run's signals and decides what each one does (see the module).

    True once a signal arrived. Use as a context manager around training and clean-up both.
    """

    def __init__(self) -> None:
        self.signals = 0
        self.cleaning = False
        self._previous: dict[int, Any] = {}

    def __bool__(self) -> bool:
        return self.signals > 0

    def _handle(self, signum: int, frame: Any) -> None:
        self.signals += 1
        if self.signals >= 3:
            raise ForcedExit(f"signal {signum}, the third")
        if self.cleaning:
            print(
                "still saving the run; one more Ctrl+C forces the exit without finishing",
                file=sys.stderr,
                flush=True,
            )
        elif self.signals == 2:
            raise TrainingTerminated(f"signal {signum}, the second")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


class Cleanup:
    """Runs the clean-up stages in order, each once, whatever else fails.

    A stage that raises is reported and the next one runs; the first error is raised at the
    end. A third signal (`ForcedExit`) skips the stages left and says which. A watchdog ends
    the process if the stages take longer than `seconds` in all.
    """

    def __init__(self, stop: StopRequest, seconds: float = CLEANUP_SECONDS):
        self.stop = stop
        self.seconds = seconds
        self.left: list[str] = []

    def run(self, stages: list[tuple[str, Callable[[], Any]]]) -> None:
        self.stop.cleaning = True
        self.left = [name for name, _ in stages]
        watchdog = threading.Timer(self.seconds, self._overran)
        watchdog.daemon = True
        watchdog.start()
        first_error: BaseException | None = None
        try:
            for name, stage in stages:
                try:
                    stage()
                except Exception as exc:  # a third signal (ForcedExit) is not an Exception
                    print(f"clean-up: {name} failed: {exc!r}", file=sys.stderr, flush=True)
                    first_error = first_error or exc
                self.left.remove(name)
        except ForcedExit:
            print(f"forced exit: skipped {', '.join(self.left)}", file=sys.stderr, flush=True)
            raise
        finally:
            watchdog.cancel()
        if first_error is not None:
            raise first_error

    def _overran(self) -> None:
        print(
            f"clean-up took over {self.seconds:.0f} s and is stuck; exiting without: "
            f"{', '.join(self.left)}",
            file=sys.stderr,
            flush=True,
        )
        os._exit(FORCED_EXIT_CODE)
