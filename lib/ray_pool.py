"""The Ray backend (`--backend ray`): the same workers as Ray actors, on one machine or many.

Each `RayWorker` actor plays exactly what a local worker plays (`lib.worker.play`: envs, agent,
n-step windows, micro-batches); only the transport differs. The learner keeps one `next` call
in flight per actor and takes whichever reply is ready first (`ray.wait`); a reply carries every
message the actor has queued since its last one (up to `OUTBOX`), so that a Ray call's fixed
cost is shared by several small messages (CartPole's). Each call carries a
reference to the newest weights, which the learner `ray.put`s once per update (not once per
actor); an actor loads them when their version is newer than its own. Replies and weights
travel through Ray's object store as pickled bytes, so the bytes that cross are counted.

`RayWorkerPool` implements `lib.pool.Pool`, so `lib.a3c.learn` runs either backend. Ray
restarts an actor whose process dies (`max_restarts`); the pool goes on with the others
meanwhile, asks the restarted actor again, says so on stderr when it is back (each reply names
the actor's process and node, so nothing waits on a second call), and once an actor has died
more often than Ray restarts it raises `WorkerError` naming the actor and its node.

Ray is an optional extra (`pip install -e '.[distributed]'`): only this module imports it, and
only `train(..., backend="ray")` imports this module.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import signal
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lib.config import A3CConfig
from lib.pool import STALL_SECONDS, WorkerError

IN_FLIGHT = 1
"""`next` calls the learner keeps waiting on each actor. The actor's play thread goes on while a
reply travels and the learner handles it, filling its outbox for the next reply."""
OUTBOX = 4
"""Messages an actor may queue ahead of the learner: its play thread waits once that many are
waiting (the local pool's pipe and inbox bound a local worker the same way)."""
START_SECONDS = 120.0
"""How long the actors get to start (import torch, make their envs) before the run stops."""
OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of a Ray instance the run starts itself: a few dozen micro-batches and weight
copies in flight, however much memory the machine has (Ray's default takes 30% of it)."""
RETRY_SECONDS = 0.5
"""How long to wait before asking again an actor that Ray is restarting."""
INSTALL = "pip install -e '.[distributed]'"


def require_ray() -> None:
    """Raise `ImportError` naming the install line when Ray is missing (before anything starts)."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"--backend ray needs Ray, an optional extra of the course: run `{INSTALL}` "
            f"(or `make install`, which installs it), or use --backend local. ({exc})"
        ) from None


def say(line: str) -> None:
    """A line on stderr that leaves a progress bar whole."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)


def weights_bytes(net: nn.Module) -> bytes:
    """The network's weights as one pickled dict of numpy arrays: what an actor loads."""
    return pickle.dumps(
        {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()},
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def connect(address: str | None, processes: int) -> None:
    """Join the Ray cluster at `address`, or start a Ray instance of the run's own (with at
    least `processes` CPUs, a small object store, no dashboard); keep this process's SIGTERM
    handler, which `ray.init` replaces."""
    import ray

    sigterm = signal.getsignal(signal.SIGTERM)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": "WARNING",
        "configure_logging": True,
    }
    if address:
        ray.init(address=address, **options)
    else:
        cpus = max(os.cpu_count() or 1, processes)
        ray.init(address="local", num_cpus=cpus, object_store_memory=OBJECT_STORE_BYTES, **options)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm)


class Outbox:
    """The actor's side of `lib.pool.Sender`: a bounded queue the play thread fills and `next`
    empties, so an actor runs at most `maxsize` messages ahead of the learner."""

    def __init__(self, maxsize: int = OUTBOX):
        self.items: queue.Queue[Any] = queue.Queue(maxsize)

    def put(self, item: Any) -> None:
        self.items.put(item)

    def send_last(self, item: Any, timeout: float = 10.0) -> None:
        self.items.put(item, timeout=timeout)


class RayWorker:
    """One worker as a Ray actor: `lib.worker.play` on a thread, replies on demand.

    New weights arrive with each `next` call, on Ray's thread; the play thread loads them
    between micro-batches (`refresh`), never while a gradient is being taken with the old ones.
    Ray runs `__init__` again in a new process when it restarts the actor; the first `next`
    then loads the newest weights before the play thread starts, as on the first start.
    """

    def __init__(self, worker_id: int, config: A3CConfig):
        from lib.envs import obs_shape_and_actions
        from lib.model import make_net
        from lib.worker import message_maker, prepare_worker

        prepare_worker(config, worker_id)
        self.worker_id = worker_id
        self.config = config
        shape, n_actions = obs_shape_and_actions(config.env_id)
        self.net = make_net(config, shape, n_actions)
        self.version = types.SimpleNamespace(value=-1)
        """The learner's update count when the weights this actor holds were published."""
        self.newest: tuple[int, Any] | None = None
        """(version, reference) of the newest weights the learner sent, not loaded yet."""
        self.message = message_maker(config, self.net, "cpu", self.version)
        self.outbox = Outbox()
        self.thread: threading.Thread | None = None
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()

    def where(self) -> tuple[int, str]:
        """This actor's pid and node id (asked once, at the start)."""
        return os.getpid(), self.node_id

    def next(self, weights: list[Any], version: int) -> tuple[bytes, int, str]:
        """The messages queued since the last call (waiting for one at least), pickled as a
        list, with this actor's pid and node id. `weights` (a list holding the reference the
        learner put) are loaded by the play thread, if newer than the actor's."""
        if version > self.version.value:
            self.newest = (version, weights[0])
        if self.thread is None:
            self.refresh()  # before the first move, as a local worker starts with the weights
            self.thread = threading.Thread(target=self._play, name="play", daemon=True)
            self.thread.start()
        messages = [self.outbox.items.get()]
        while len(messages) < OUTBOX:
            try:
                messages.append(self.outbox.items.get_nowait())
            except queue.Empty:
                break
        data = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
        return data, os.getpid(), self.node_id

    def refresh(self) -> None:
        """Load the newest weights the learner sent, if any are waiting."""
        newest, self.newest = self.newest, None
        if newest is None or newest[0] <= self.version.value:
            return
        import ray

        state = pickle.loads(ray.get(newest[1]))
        with torch.no_grad():
            for name, tensor in self.net.state_dict().items():
                tensor.copy_(torch.from_numpy(state[name]))
        self.version.value = newest[0]

    def _play(self) -> None:
        from lib.worker import play

        try:
            play(
                self.worker_id,
                self.config,
                self.net,
                "cpu",
                self.outbox,
                self.version,
                self.message,
                self.refresh,
            )
        except SystemExit:  # play sent WorkerFailed; the learner raises it
            pass


class RayWorkerPool:
    """`lib.pool.Pool` over Ray actors (see the module docstring).

    With `address` the pool joins that cluster and leaves it running; without, it starts a Ray
    instance of its own and shuts it down in `stop`, so no Ray process outlives the run.
    """

    def __init__(
        self,
        config: A3CConfig,
        net: nn.Module,
        version: Any,
        address: str | None = None,
        max_restarts: int = 3,
    ):
        require_ray()
        self.config = config
        self.net = net
        self.version = version
        """The learner's update count (`WorkerWeights.version`): weights are put when it moves."""
        self.address = address
        self.max_restarts = max_restarts
        self.actors: list[Any] = []
        self.nodes: list[str] = []
        """Where each actor runs: "host (node id)"; it changes when Ray restarts an actor."""
        self.pids: list[int] = []
        self.deaths: list[int] = []
        """Times each actor's process died; Ray restarts it `max_restarts` times at most."""
        self.restarted: list[int] = []
        """Times each actor replied again after Ray restarted it."""
        self.local_workers = config.processes
        """Actors on this machine (known once they started)."""
        self.bytes_delivered = 0
        """Bytes of the pickled replies `get` has handed out (what crossed from the actors)."""
        self.bytes_published = 0
        """Bytes of the weights the learner put into the object store, all publishes."""
        self.pending: dict[Any, int] = {}
        """In-flight `next` calls: reference -> worker id."""
        self.retry: dict[int, float] = {}
        """Workers Ray is restarting -> when to ask them again (monotonic seconds)."""
        self.ready: collections.deque[Any] = collections.deque()
        """Messages of a reply that `get` has not handed out yet."""
        self.last_heard: list[float] = []
        self._weights: tuple[int, Any] | None = None
        self._hosts: dict[str, str] = {}
        """Node id -> its address, as Ray listed the nodes at the start."""
        self._connected = False
        """True when this pool called `ray.init` (and so calls `ray.shutdown`)."""

    # --- start ----------------------------------------------------------------------------

    def start(self) -> None:
        import ray

        if not ray.is_initialized():
            connect(self.address, self.config.processes)
            self._connected = True
        free = ray.cluster_resources().get("CPU", 0)
        if free < self.config.processes:
            raise WorkerError(
                f"the Ray cluster has {free:g} CPUs and the run asks for "
                f"{self.config.processes} worker actors of one CPU each: add nodes "
                "(`ray start --address ...` on another machine) or lower --processes"
            )
        actor_class = ray.remote(num_cpus=1, max_restarts=self.max_restarts, max_task_retries=0)(
            RayWorker
        )
        # One torch thread per actor (as `lib.pool.worker_environ`), and this very `lib` first
        # on the path: a course that is not installed (a notebook's folder) works as well.
        path = [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]
        env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in path if p)}
        for worker_id in range(self.config.processes):
            actor = actor_class.options(
                name=None,
                scheduling_strategy="SPREAD",
                runtime_env={"env_vars": env},
            ).remote(worker_id, self.config)
            self.actors.append(actor)
        try:
            places = ray.get([a.where.remote() for a in self.actors], timeout=START_SECONDS)
        except ray.exceptions.GetTimeoutError:
            raise WorkerError(
                f"the {self.config.processes} worker actors did not start within "
                f"{START_SECONDS:.0f} s; `ray status` shows what the cluster can place"
            ) from None
        self._hosts = {n["NodeID"]: n.get("NodeManagerAddress", "?") for n in ray.nodes()}
        self.nodes = [self._node_name(node_id) for _, node_id in places]
        self.pids = [pid for pid, _ in places]
        self.deaths = [0] * len(self.actors)
        self.restarted = [0] * len(self.actors)
        here = ray.get_runtime_context().get_node_id()
        self.local_workers = sum(node_id == here for _, node_id in places)
        self.last_heard = [time.monotonic()] * len(self.actors)
        for worker_id in range(len(self.actors)):
            for _ in range(IN_FLIGHT):
                self._ask(worker_id)

    def _node_name(self, node_id: str) -> str:
        return f"{self._hosts.get(node_id, '?')} ({node_id[:8]})"

    def _weights_ref(self) -> tuple[int, Any]:
        """The newest weights in the object store: put once per update, when first asked for."""
        import ray

        version = 0 if self.version is None else int(self.version.value)
        if self._weights is None or self._weights[0] != version:
            data = weights_bytes(self.net)
            self._weights = (version, ray.put(data))
            self.bytes_published += len(data)
        return self._weights

    def _ask(self, worker_id: int) -> None:
        version, ref = self._weights_ref()
        call = self.actors[worker_id].next.remote([ref], version)
        self.pending[call] = worker_id

    # --- the learner's side -----------------------------------------------------------------

    def get(self, timeout: float) -> Any:
        """The next message from whichever actor is ready, or None if none came in `timeout` s.

        Never blocks longer: a dead actor's call fails at once, and a restarted actor's first
        reply names its new process and node itself.
        """
        import ray

        if self.ready:
            return self.ready.popleft()
        now = time.monotonic()
        for worker_id, when in list(self.retry.items()):
            if when <= now:
                del self.retry[worker_id]
                for _ in range(IN_FLIGHT):
                    self._ask(worker_id)
        if self.retry:
            timeout = max(0.0, min(timeout, min(self.retry.values()) - now))
        if not self.pending:
            time.sleep(timeout)
            return None
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if not ready:
            return None
        worker_id = self.pending.pop(ready[0])
        try:
            data, pid, node_id = ray.get(ready[0])
        except ray.exceptions.ActorUnavailableError:
            # its process died and Ray is restarting it: ask again shortly, not in a busy loop
            self._retry(worker_id)
            return None
        except ray.exceptions.ActorDiedError as exc:
            # it died during the call: Ray restarts it while restarts remain
            self.deaths[worker_id] += 1
            if self.deaths[worker_id] <= self.max_restarts:
                self._retry(worker_id)
                return None
            raise WorkerError(
                f"worker {worker_id} (Ray actor {self.actors[worker_id]._actor_id.hex()[:12]} "
                f"on node {self.nodes[worker_id]}) died and Ray did not restart it: it died "
                f"{self.deaths[worker_id]} times, and the limit is {self.max_restarts} restarts "
                f"(--max-restarts). Ray said: {str(exc).splitlines()[0]}"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            node = self.nodes[worker_id]
            raise WorkerError(f"worker {worker_id} ({node}) raised:\n{exc}") from None
        self._ask(worker_id)
        self.last_heard[worker_id] = time.monotonic()
        self.bytes_delivered += len(data)
        self.ready.extend(pickle.loads(data))
        if pid != self.pids[worker_id]:  # the first reply of a restarted actor
            self.pids[worker_id] = pid
            self.nodes[worker_id] = self._node_name(node_id)
            self.restarted[worker_id] += 1
            self.deaths[worker_id] = max(self.deaths[worker_id], self.restarted[worker_id])
            say(
                f"worker {worker_id} died and Ray restarted it, on node {self.nodes[worker_id]} "
                f"(restarts so far: {self.restarts})"
            )
        return self.ready.popleft()

    @property
    def restarts(self) -> int:
        """Actors Ray restarted that replied again, in all."""
        return sum(self.restarted)

    def _retry(self, worker_id: int) -> None:
        if not any(w == worker_id for w in self.pending.values()):
            self.retry[worker_id] = time.monotonic() + RETRY_SECONDS

    def check(self) -> None:
        """Raise `WorkerError` if an actor has sent nothing for `STALL_SECONDS` (a dead one
        shows up in `get` instead)."""
        now = time.monotonic()
        for worker_id, heard in enumerate(self.last_heard):
            if now - heard > STALL_SECONDS:
                raise WorkerError(
                    f"worker {worker_id} (node {self.nodes[worker_id]}) has sent nothing for "
                    f"{now - heard:.0f} s: it is stuck, or Ray cannot restart it. The run "
                    "was stopped rather than left waiting."
                )

    def request_stop(self) -> None:
        """Nothing to do before `stop`: the actors play only while asked for replies."""

    def stop(self) -> None:
        """Kill the actors; shut down the Ray instance this pool started (or disconnect)."""
        import ray

        if not ray.is_initialized():
            return
        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone: nothing to stop
                pass
        self.pending.clear()
        if self._connected:
            ray.shutdown()
            self._connected = False
