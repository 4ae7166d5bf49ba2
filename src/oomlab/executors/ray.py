"""Backends on Ray workers (`--executor ray`): one actor per node or GPU, each holding its own backend.

The driver sends each request to the least-loaded live actor and gets the samples back one at a time
(a Ray streaming generator), so the caller commits each to the Store the moment it exists and the
driver stays the only writer of the database. An actor that dies costs only what it had in flight:
each of its requests is sent again, whole, to another actor (llama.cpp's samples depend on the batch
they were decoded in, so only a whole re-send gives the samples an uninterrupted draw gives), the
samples already delivered are not delivered again, and the work lost with the actor is booked as
Waste. A replacement actor is started in the background and joins when it has loaded its model.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from oomlab.backends.base import BACKENDS, GenRequest, Generation, ModelFacts, SampleCallback, Waste, create_backend
from oomlab.errors import BackendError, ConfigError, OomlabError

log = logging.getLogger(__name__)

INSTALL_HINT = '--executor ray needs Ray: pip install "oomlab[ray]"'
SPARE_THREADS = 2  # actor threads beyond its backend's concurrency, so describe/close never queue behind draws


def import_ray() -> Any:
    """The ray module, or the one-line ConfigError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _message(e: BaseException) -> str:
    """An error as one line for a person: our own errors already are one; others get their type."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text if isinstance(e, OomlabError) else f"{type(e).__name__}: {text}".rstrip(": ")


class BackendWorker:
    """What runs inside one Ray actor: a backend built on the actor's own node, by registered name.

    A plain class (wrapped by `ray.remote` at run time) so this module imports without Ray.
    """

    def __init__(self, backend: str, options: dict[str, Any]) -> None:
        self.backend: Any = None
        self.error: str | None = None
        try:
            self.backend = create_backend(backend, **options)
        except Exception as e:  # told by describe(): a raise here would reach the driver as a bare ActorDiedError
            self.error = _message(e)
        self._streams = False
        if self.backend is not None:
            try:
                self._streams = "on_sample" in inspect.signature(self.backend.generate).parameters
            except (TypeError, ValueError):
                pass

    def describe(self) -> dict[str, Any]:
        """Where this actor runs and what model it serves, for the driver's identity check."""
        import ray

        where = {"node_id": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
                 "pid": os.getpid(), "gpus": [str(g) for g in ray.get_gpu_ids()]}
        if self.backend is None:
            return {**where, "error": self.error}
        b = self.backend
        concurrency = getattr(b, "concurrency", None)
        return {**where, "model_id": b.model_id, "facts": b.facts, "sha256": getattr(b, "sha256", None),
                "capacity": concurrency if isinstance(concurrency, int) and concurrency >= 1 else 1,
                "server_watts": getattr(b, "server_watts", None), "endpoint": getattr(b, "endpoint", None)}

    def generate(self, request: GenRequest) -> Iterator[tuple[str, Any]]:
        """Stream ("start"), then ("sample", (i, generation)) as each sample finishes, ("waste", [...]),
        and ("error", message) if the draw failed.

        The backend draws on a thread of its own so that its on_sample callback, called on that thread,
        can hand each sample to this generator the moment it exists.
        """
        yield ("start", None)
        items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

        def draw() -> None:
            try:
                if self._streams:
                    gens = self.backend.generate(request, on_sample=lambda i, g: items.put(("sample", (i, g))))
                else:
                    gens = self.backend.generate(request)
                items.put(("done", gens))
            except BaseException as e:  # noqa: BLE001 - reported to the driver, which raises it
                items.put(("error", _message(e)))

        threading.Thread(target=draw, name="oomlab-ray-draw", daemon=True).start()
        sent: set[int] = set()
        while True:
            kind, payload = items.get()
            if kind == "sample":
                if payload[0] not in sent:
                    sent.add(payload[0])
                    yield ("sample", payload)
                continue
            if kind == "done":
                for i, g in enumerate(payload):  # a backend that does not stream, or one that skipped a callback
                    if i not in sent:
                        sent.add(i)
                        yield ("sample", (i, g))
            waste = self.take_waste()
            if waste:
                yield ("waste", waste)
            if kind == "error":
                yield ("error", payload)
            return

    def take_waste(self) -> list[Waste]:
        take = getattr(self.backend, "take_waste", None)
        return list(take()) if take is not None else []

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


@dataclass
class WorkerState:
    """The driver's view of one actor; `RayBackend.workers` hands out copies."""

    actor: Any
    node_id: str
    ip: str
    pid: int
    capacity: int  # requests it may have at once: its backend's concurrency, else 1
    gpus: tuple[str, ...] = ()
    in_flight: int = 0  # requests sent to it and not yet ended
    started: int = 0  # of those, the ones it has begun drawing
    served: int = 0  # requests it finished
    alive: bool = True
    died: str = ""  # why, once dead
    last_sent: int = 0

    @property
    def where(self) -> str:
        gpus = f" GPU {','.join(self.gpus)}" if self.gpus else ""
        return f"{self.ip} pid {self.pid}{gpus}"


@dataclass
class _LostTry:
    """A try that died with its worker: what it had delivered, and for how long it was drawing."""

    where: str
    reason: str
    begun: float | None  # perf_counter when the worker began drawing; None: it never began
    ended: float
    finished: set[int] = field(default_factory=set)  # samples it sent back (delivered or re-drawn) before dying
    finished_seconds: float = 0.0  # their device time, already on the books


class RayBackend:
    """A Backend whose samples are drawn by Ray actors, each holding its own `backend` built from options.

    Connects to the cluster at `address` (or the one this process already joined, or starts a local
    one). `workers` actors, each reserving `num_cpus` / `num_gpus`; by default one per GPU for an
    engine (llamacpp, torch) on a cluster with GPUs, else one per node (per GPU node, if any has GPUs:
    an HTTP backend's endpoint is local to its node). `actor_options` go to Ray as they are
    (runtime_env, resources).
    Thread-safe: `generate` may be called from many threads at once, and waits when every live worker
    has `capacity` requests in flight. `server_watts`: each worker's device power, for an energy
    estimate (the local counters do not see the workers); taken from the backends if they report it.
    """

    name: ClassVar[str] = "ray"
    remote: ClassVar[bool] = True

    def __init__(
        self,
        backend: str,
        backend_options: dict[str, Any] | None = None,
        *,
        address: str | None = None,
        workers: int | None = None,
        num_cpus: float = 1.0,
        num_gpus: float | None = None,
        actor_options: dict[str, Any] | None = None,
        server_watts: float | None = None,
        replace_dead: bool = True,
        max_resends: int = 3,
        start_timeout_s: float = 600.0,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        ray = import_ray()
        from ray.exceptions import ActorUnschedulableError, NodeDiedError, ObjectLostError, RayActorError

        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be at least 1 (got {workers})")
        if max_resends < 0 or start_timeout_s <= 0 or num_cpus < 0 or (num_gpus is not None and num_gpus < 0):
            raise ConfigError("max_resends, num_cpus and num_gpus must be 0 or more, start_timeout_s positive")
        cls = BACKENDS.get(backend)  # an unknown name fails here, before any cluster starts
        options = dict(backend_options or {})
        params = _init_params(cls)
        if "server_watts" in options and "server_watts" not in params:  # -B server_watts=W: the worker's power
            watts = options.pop("server_watts")
            try:
                server_watts = float(watts)
            except (TypeError, ValueError):
                raise ConfigError(f"server_watts must be a number of watts, got {watts!r}") from None
        if server_watts is not None and not server_watts > 0:
            raise ConfigError(f"server_watts must be a positive number of watts, got {server_watts!r}")
        self._ray = ray
        # A worker lost: the actor died, its node died, or its results went with it.
        self._lost_errors: tuple[type[BaseException], ...] = (RayActorError, NodeDiedError, ObjectLostError,
                                                              ActorUnschedulableError)
        self.backend_name, self.backend_options = backend, options
        self.server_watts: float | None = server_watts
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.actor_options = dict(actor_options or {})
        self.replace_dead, self.max_resends, self.start_timeout_s = replace_dead, max_resends, start_timeout_s
        self._serves_http = bool(getattr(cls, "remote", False))  # it reaches an endpoint; it computes nothing itself
        concurrency = options.get("concurrency", params.get("concurrency"))
        self._capacity = concurrency if isinstance(concurrency, int) and concurrency >= 1 else 1

        self._owns_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, **(init_options or {}))
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise BackendError(f"cannot reach the Ray cluster at {address or 'local'}: {_message(e)}") from None
            self._owns_ray = True  # close() shuts down only what this backend started or joined
        elif address is not None:
            log.info("Ray is already initialised in this process; using that cluster, not %s", address)
        try:
            self.address = address or ray.get_runtime_context().gcs_address or "local"
        except Exception:  # noqa: BLE001 - for the books only
            self.address = address or "local"

        self._cond = threading.Condition()
        self._slots: list[WorkerState] = []
        self._pending = 0  # replacements starting
        self._waste: list[Waste] = []
        self._order = itertools.count(1)
        self._closed = False
        self.in_flight = 0
        self.peak_in_flight = 0
        self.deaths = 0
        self.replacements = 0
        self.resent = 0  # requests sent again after their worker died
        try:
            self._start(workers)
        except BaseException:
            self.close()
            raise

    # -- start-up ---------------------------------------------------------------------------
    def _start(self, workers: int | None) -> None:
        ray = self._ray
        placements: list[Any] = []
        if workers is None:
            gpus = float(ray.cluster_resources().get("GPU", 0))
            if gpus >= 1 and self.num_gpus is None and not self._serves_http:
                self.num_gpus = 1.0  # an engine in the worker: one per GPU
            if self.num_gpus:
                workers = int(gpus // self.num_gpus)
                if workers < 1:
                    raise ConfigError(f"each Ray worker asks for {self.num_gpus:g} GPU; the cluster has {gpus:g}")
                placements = [None] * workers
            else:  # one per node (per GPU node, if any has GPUs: that is where an endpoint serves)
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                nodes = [n for n in ray.nodes()
                         if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= self.num_cpus]
                with_gpus = [n for n in nodes if n.get("Resources", {}).get("GPU", 0) > 0]
                nodes = with_gpus or nodes
                if not nodes:
                    raise ConfigError(f"no live Ray node has {self.num_cpus:g} CPU for a worker")
                placements = [NodeAffinitySchedulingStrategy(n["NodeID"], soft=True) for n in nodes]
        else:
            placements = [None] * workers
        actors = [self._spawn(p) for p in placements]
        refs = [a.describe.remote() for a in actors]
        ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout_s)
        if waiting:
            for a in actors:
                ray.kill(a)
            asks = f"{self.num_cpus:g} CPU" + (f" and {self.num_gpus:g} GPU" if self.num_gpus else "")
            raise ConfigError(f"{len(waiting)} of {len(actors)} Ray workers did not start within "
                              f"{self.start_timeout_s:g} s: each asks for {asks}; the cluster has "
                              f"{_resources(ray.cluster_resources())}")
        infos = []
        for a, ref in zip(actors, refs):
            try:
                infos.append(ray.get(ref))
            except self._lost_errors as e:
                for other in actors:
                    ray.kill(other)
                raise BackendError(f"a Ray worker died while loading {self.backend_name}: {_message(e)}") from None
        errors = [f"{i['ip']}: {i['error']}" for i in infos if i.get("error")]
        if errors:
            for a in actors:
                ray.kill(a)
            raise BackendError(f"Ray workers could not create backend '{self.backend_name}': {'; '.join(errors)}")
        first = infos[0]
        differ = [f"{i['ip']} pid {i['pid']}: {i['model_id']}" for i in infos
                  if (i["model_id"], i["facts"], i["sha256"]) != (first["model_id"], first["facts"], first["sha256"])]
        if differ:
            for a in actors:
                ray.kill(a)
            raise ConfigError(f"Ray workers serve different models: {first['ip']} pid {first['pid']}: "
                              f"{first['model_id']}; {'; '.join(differ)}")
        self.model_id: str = first["model_id"]
        self.facts: ModelFacts = first["facts"]
        self.sha256: str | None = first["sha256"]
        if self.server_watts is None:  # not given: the backends' own figure, if they all report the same
            reported = {i["server_watts"] for i in infos}
            self.server_watts = reported.pop() if len(reported) == 1 else None
        endpoints = sorted({str(i["endpoint"]) for i in infos if i.get("endpoint")})
        self.endpoint = (f"ray:{self.address} ({len(infos)} workers of {self.backend_name}"
                         + (f": {', '.join(endpoints)})" if endpoints else ")"))
        with self._cond:
            self._slots = [self._state(a, i) for a, i in zip(actors, infos)]

    def _spawn(self, scheduling: Any) -> Any:
        remote_cls = self._ray.remote(BackendWorker)
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "max_concurrency": self._capacity + SPARE_THREADS,
                                "max_restarts": 0}
        if self.num_gpus:
            opts["num_gpus"] = self.num_gpus
        if scheduling is not None:
            opts["scheduling_strategy"] = scheduling
        opts.update(self.actor_options)
        return remote_cls.options(**opts).remote(self.backend_name, self.backend_options)

    def _state(self, actor: Any, info: dict[str, Any]) -> WorkerState:
        return WorkerState(actor, info["node_id"], info["ip"], int(info["pid"]),
                           max(1, min(int(info["capacity"]), self._capacity)), tuple(info.get("gpus") or ()))

    # -- what the sweep reads ---------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        """Requests that can be in flight at once: each live worker's backend concurrency, summed."""
        with self._cond:
            return sum(s.capacity for s in self._slots if s.alive)

    @property
    def workers(self) -> list[WorkerState]:
        """A snapshot of every worker, dead ones included."""
        with self._cond:
            return [replace(s) for s in self._slots]

    @property
    def dead_workers(self) -> list[str]:
        """'10.0.0.3 pid 4121 GPU 0: ActorDiedError: …' for each worker that died, for the end-of-sweep report."""
        with self._cond:
            return [f"{s.where}: {s.died}" for s in self._slots if not s.alive]

    def take_waste(self) -> list[Waste]:
        """Work the workers did that produced no sample (lost with a dead worker, re-drawn, retried), since the last call."""
        with self._cond:
            waste, self._waste = self._waste, []
        return waste

    # -- drawing ----------------------------------------------------------------------------
    def generate(self, request: GenRequest, on_sample: SampleCallback | None = None) -> list[Generation]:
        """Draw the request on the least-loaded live worker; on_sample(i, g) here, on the caller's thread,
        as each sample arrives. A worker that dies mid-request: the request goes whole to another one,
        and only samples not yet delivered are delivered."""
        got: dict[int, Generation] = {}
        lost: list[_LostTry] = []
        waited = 0.0  # before this try: dead tries, whole (shown as the samples' wait, never charged)
        try:
            for attempt in range(self.max_resends + 1):
                if attempt:
                    with self._cond:
                        self.resent += 1
                asked = time.perf_counter()
                slot = self._acquire()
                try:
                    if self._try(slot, request, got, on_sample, lost, waited, asked):
                        return [got[i] for i in range(request.n)]
                finally:
                    self._release(slot)
                waited += time.perf_counter() - asked
            raise BackendError(f"a request was lost with {len(lost)} Ray workers in a row "
                               f"({'; '.join(t.where for t in lost)}); not sent again")
        finally:
            self._book_lost(lost, got, request)

    def _try(self, slot: WorkerState, request: GenRequest, got: dict[int, Generation],
             on_sample: SampleCallback | None, lost: list[_LostTry], waited: float, asked: float) -> bool:
        """One try on one worker: True when its stream ended; False when the worker died during it.

        Each sample's wait_seconds gains the time before its worker began (a free worker, Ray's
        dispatch) and the dead tries before this one: the caller waited, no device worked for it.
        """
        ray = self._ray
        begun: float | None = None
        wait = waited
        finished: dict[int, Generation] = {}  # every sample this try sent back
        redrawn: list[Generation] = []
        error: str | None = None
        stream = None
        try:
            stream = slot.actor.generate.options(num_returns="streaming").remote(request)
            for ref in stream:
                kind, payload = ray.get(ref)
                if kind == "start":
                    begun = time.perf_counter()
                    wait = waited + begun - asked
                    self._started(slot, 1)
                elif kind == "sample":
                    i, g = payload
                    finished[i] = g
                    if i in got:  # delivered by a try that died: this copy is work without a sample
                        redrawn.append(g)
                        continue
                    g = replace(g, wait_seconds=g.wait_seconds + wait)
                    got[i] = g
                    if on_sample is not None:
                        on_sample(i, g)
                elif kind == "waste":
                    with self._cond:
                        self._waste.extend(payload)
                elif kind == "error":
                    error = payload
        except self._lost_errors as e:
            self._died(slot, e)
            lost.append(_LostTry(slot.where, _message(e), begun, time.perf_counter(), set(finished),
                                 sum(g.seconds for g in finished.values())))
            return False
        except BaseException:  # the caller failed (on_sample raised) or was interrupted: abandon the draw
            if stream is not None:
                try:
                    ray.cancel(stream)
                except Exception:  # noqa: BLE001 - best effort; the worker may already be done
                    pass
            if begun is not None:
                self._book(Waste(0, 0, time.perf_counter() - begun, "cancelled (the caller failed); tokens unknown",
                                 f"ray://{slot.where}"))
            raise
        finally:
            if begun is not None:
                self._started(slot, -1)
            if redrawn:
                self._book(Waste(_prompt_share(redrawn), sum(g.completion_tokens for g in redrawn),
                                 sum(g.seconds for g in redrawn),
                                 "re-drawn: a request is re-sent whole after its Ray worker died, so its samples "
                                 "match an uninterrupted draw", f"ray://{slot.where}", estimated=False))
        if error is not None:
            raise BackendError(f"{error} (on Ray worker {slot.where})")
        missing = request.n - len(got)
        if missing:
            raise BackendError(f"Ray worker {slot.where} returned {request.n - missing} of {request.n} samples")
        with self._cond:
            slot.served += 1
        return True

    def _book_lost(self, lost: list[_LostTry], got: dict[int, Generation], request: GenRequest) -> None:
        """Book what each dead try was drawing when it died, estimated from the re-sent request's samples."""
        for t in lost:
            if t.begun is None:
                continue  # the worker died before it began this request: nothing was drawn
            gone = [i for i in range(request.n) if i not in t.finished]
            busy = max(0.0, t.ended - t.begun - t.finished_seconds)
            if all(i in got for i in gone):
                known = [got[i] for i in gone]
                self._book(Waste(_prompt_share(known), sum(g.completion_tokens for g in known),
                                 min(busy, sum(g.seconds for g in known)),
                                 f"Ray worker died mid-request ({t.reason}); at most the re-sent samples' tokens",
                                 f"ray://{t.where}"))
            else:
                self._book(Waste(0, 0, busy, f"Ray worker died mid-request ({t.reason}); tokens unknown",
                                 f"ray://{t.where}"))

    def _book(self, w: Waste) -> None:
        with self._cond:
            self._waste.append(w)

    # -- the pool -----------------------------------------------------------------------------
    def _acquire(self) -> WorkerState:
        """The live worker with the fewest requests per slot (waits while all are full)."""
        with self._cond:
            while True:
                if self._closed:
                    raise BackendError("the Ray executor is closed")
                live = [s for s in self._slots if s.alive]
                free = [s for s in live if s.in_flight < s.capacity]
                if free:
                    slot = min(free, key=lambda s: (s.in_flight / s.capacity, s.last_sent))
                    slot.in_flight += 1
                    slot.last_sent = next(self._order)
                    self.in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                    return slot
                if not live and not self._pending:
                    raise BackendError("every Ray worker has died: " + "; ".join(
                        f"{s.where}: {s.died}" for s in self._slots))
                self._cond.wait()

    def _release(self, slot: WorkerState) -> None:
        with self._cond:
            slot.in_flight -= 1
            self.in_flight -= 1
            self._cond.notify_all()

    def _started(self, slot: WorkerState, delta: int) -> None:
        with self._cond:
            slot.started += delta

    def _died(self, slot: WorkerState, e: BaseException) -> None:
        """Take a lost worker out of the pool (killing it, in case it is only unreachable) and replace it."""
        with self._cond:
            if not slot.alive:
                return
            slot.alive = False
            slot.died = _message(e)
            self.deaths += 1
            replace_it = self.replace_dead and not self._closed
            if replace_it:
                self._pending += 1
            self._cond.notify_all()
        log.warning("Ray worker %s died (%s); its requests go to the others%s", slot.where, slot.died,
                    "; starting a replacement" if replace_it else "")
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        if replace_it:
            threading.Thread(target=self._replace, name="oomlab-ray-replace", daemon=True).start()

    def _replace(self) -> None:
        """Start one more worker; it joins the pool once it serves the same model."""
        ray = self._ray
        actor = None
        try:
            actor = self._spawn(None)
            info = ray.get(actor.describe.remote(), timeout=self.start_timeout_s)
            if info.get("error"):
                raise BackendError(info["error"])
            if (info["model_id"], info["facts"], info["sha256"]) != (self.model_id, self.facts, self.sha256):
                raise BackendError(f"it serves {info['model_id']}, not {self.model_id}")
            with self._cond:
                if not self._closed:
                    self._slots.append(self._state(actor, info))
                    self.replacements += 1
                    actor = None
        except Exception as e:  # noqa: BLE001 - the sweep goes on with the workers it has
            if not self._closed:
                log.warning("could not replace a dead Ray worker: %s", _message(e))
        finally:
            if actor is not None:
                try:
                    ray.kill(actor)
                except Exception:  # noqa: BLE001
                    pass
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def close(self) -> None:
        """Close every worker's backend, kill the actors, and shut Ray down if this backend started it."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            slots = [s for s in self._slots if s.alive]
            self._cond.notify_all()
        ray = self._ray
        if slots:
            try:
                ray.wait([s.actor.close.remote() for s in slots], num_returns=len(slots), timeout=10)
            except Exception:  # noqa: BLE001 - they are killed next regardless
                pass
        for s in slots:
            try:
                ray.kill(s.actor)
            except Exception:  # noqa: BLE001
                pass
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()


def _init_params(cls: type) -> dict[str, Any]:
    """A backend class's constructor keywords and their defaults."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    return {n: (None if p.default is inspect.Parameter.empty else p.default) for n, p in sig.parameters.items()}


def _prompt_share(gens: list[Generation]) -> int:
    """The prompt tokens these samples' ledger entries would carry: each its share of its group's prompt."""
    return round(sum(g.prompt_tokens / max(g.group_size, 1) for g in gens))


def _resources(res: dict[str, float]) -> str:
    shown = {k: v for k, v in res.items() if k in ("CPU", "GPU") or k.startswith("accelerator")}
    return ", ".join(f"{v:g} {k}" for k, v in sorted(shown.items())) or "no CPUs or GPUs"


__all__ = ["INSTALL_HINT", "BackendWorker", "RayBackend", "WorkerState", "import_ray"]
