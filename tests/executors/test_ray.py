"""`--executor ray` on a real local Ray cluster (2 CPUs) whose two actors each hold the embedded model.

The reference is the same sweep drawn in this process by the embedded llama.cpp backend with the
same options: same seeds, so the same cache keys and the same samples, whichever actor drew them,
and also after an actor is killed in the middle of a request.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from oomlab.backends.base import GenRequest, SamplingParams
from oomlab.errors import BackendError, ConfigError
from oomlab.executors import executor_backend
from oomlab.executors.ray import INSTALL_HINT, RayBackend
from oomlab.store import Store
from oomlab.sweep import Sweep, SweepConfig

pytestmark = pytest.mark.slow

OPTIONS = {"n_threads": 1, "n_ctx": 2048, "max_parallel": 8}


def config() -> SweepConfig:
    return SweepConfig(problems=6, n=8, strategies=["greedy", "majority"], backend_options=dict(OPTIONS))


def samples(store: Store) -> dict[str, tuple[Any, ...]]:
    """Every committed sample by cache key: what was drawn, not when or by whom."""
    rows = store.db.execute("SELECT cache_key, seed, text, prompt_tokens, completion_tokens, finish_reason FROM samples")
    return {r[0]: tuple(r[1:]) for r in rows}


def test_without_ray_it_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as on a machine without it
    for make in (lambda: RayBackend("llamacpp", OPTIONS), lambda: executor_backend("ray", "llamacpp", OPTIONS)):
        with pytest.raises(ConfigError) as e:
            make()
        assert str(e.value) == INSTALL_HINT == '--executor ray needs Ray: pip install "oomlab[ray]"'


def test_executor_names_and_flags_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown executor 'dask'; valid executors: local, ray"):
        executor_backend("dask", "llamacpp")
    with pytest.raises(ConfigError, match="need --executor ray"):
        executor_backend("local", "llamacpp", workers=2)


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    from oomlab.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(**OPTIONS)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def local_run(local: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple[Any, ...]], int]:
    """The reference: the sweep drawn in this process. (samples by cache key, attempts)"""
    store = Store(tmp_path_factory.mktemp("local") / "local.db")
    result = Sweep(config(), store, backend=local).run()
    out = samples(store), len(store.attempts(result.run_id))
    store.close()
    return out


@pytest.fixture(scope="module")
def ray_backend() -> Iterator[RayBackend]:
    """One local cluster for the module (Ray starts slowly), started here, with two model-holding actors.

    The cluster also declares two logical GPUs (Ray schedules them; llama.cpp's CPU build ignores
    them), so that the default one-worker-per-GPU placement can be checked without a GPU.
    """
    import ray

    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    backend = RayBackend("llamacpp", OPTIONS, workers=2)
    try:
        yield backend
    finally:
        backend.close()
        ray.shutdown()


def test_workers_serve_the_local_model(ray_backend: RayBackend, local: Any) -> None:
    assert len(ray_backend.workers) == 2 and ray_backend.concurrency == 2
    assert len({w.pid for w in ray_backend.workers}) == 2, "two actor processes, each with its own model"
    # the same identity as the local backend, so cache keys (and resumes) carry over between executors
    assert (ray_backend.model_id, ray_backend.facts, ray_backend.sha256) == (local.model_id, local.facts, local.sha256)
    assert ray_backend.remote and ray_backend.server_watts is None  # local counters do not see the workers


def test_many_threads_keep_both_workers_busy(ray_backend: RayBackend, local: Any) -> None:
    params = SamplingParams(max_tokens=9, stop=("\n",))
    requests = [GenRequest(f"{a} + {a} = {2 * a}\n{a} + 3 =", params, tuple(range(4))) for a in range(1, 7)]
    before = [w.served for w in ray_backend.workers]
    results: dict[int, list[Any]] = {}
    handed: dict[int, list[tuple[int, bool]]] = {i: [] for i in range(len(requests))}

    def draw(i: int) -> None:
        ident = threading.get_ident()
        results[i] = ray_backend.generate(requests[i], on_sample=lambda j, g: handed[i].append((j, ident == threading.get_ident())))

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(requests):
        assert [g.text for g in results[i]] == [g.text for g in local.generate(r)]
        assert sorted(j for j, _ in handed[i]) == [0, 1, 2, 3] and all(same for _, same in handed[i]), \
            "each sample handed over once, on the caller's thread"
    assert ray_backend.peak_in_flight == 2, "at most one request per llama.cpp worker, and both used"
    assert all(w.served > b for w, b in zip(ray_backend.workers, before)), "least-loaded first spreads the work"
    assert ray_backend.in_flight == 0


def test_sweep_on_ray_equals_the_local_sweep(ray_backend: RayBackend, local_run: Any, tmp_path) -> None:
    expected, attempts = local_run
    store = Store(tmp_path / "ray.db")
    result = Sweep(config(), store, backend=ray_backend).run()
    assert samples(store) == expected
    assert result.drawn == len(expected) == store.sample_count()
    assert len(store.attempts(result.run_id)) == attempts
    assert store.waste(result.run_id).requests == 0
    assert store.run(result.run_id).status == "done"


def test_a_killed_worker_loses_nothing_and_draws_nothing_twice(ray_backend: RayBackend, local_run: Any,
                                                               tmp_path) -> None:
    import ray

    expected, attempts = local_run
    deaths = ray_backend.deaths
    killed: list[str] = []
    stop = threading.Event()

    def kill_one_mid_request() -> None:
        """Once the sweep is under way, kill a worker that has begun drawing a request."""
        while not stop.is_set():
            if sum(w.served for w in ray_backend.workers) >= 4:
                busy = [w for w in ray_backend.workers if w.alive and w.started]
                if busy:
                    ray.kill(busy[0].actor)
                    killed.append(busy[0].where)
                    return
            time.sleep(0.001)

    killer = threading.Thread(target=kill_one_mid_request, daemon=True)
    killer.start()
    db = tmp_path / "killed.db"
    store = Store(db)
    try:
        result = Sweep(config(), store, backend=ray_backend).run()
    finally:
        stop.set()
        killer.join()
    assert killed, "the sweep ended before a worker could be killed"
    assert ray_backend.deaths == deaths + 1 and ray_backend.resent >= 1
    assert any(d.startswith(killed[0]) for d in ray_backend.dead_workers)

    # nothing lost, nothing drawn twice: every sample of the local sweep, each committed once, none other
    assert samples(store) == expected
    assert result.drawn == len(expected) == store.sample_count()
    keys = [k for (k,) in sqlite3.connect(db).execute("SELECT cache_key FROM samples")]
    assert len(keys) == len(set(keys)) == len(expected)
    assert len(store.attempts(result.run_id)) == attempts and store.dangling() == 0
    waste = store.waste(result.run_id)
    assert not any("drawn twice" in r for r in waste.reasons), waste.reasons
    # the work that died with the worker is on the books, labelled an estimate
    lost = [r for r in waste.reasons if r.startswith("Ray worker died mid-request")]
    assert lost and waste.estimated, waste.reasons
    assert waste.prompt_tokens + waste.completion_tokens > 0

    # a replacement joins the pool once it has loaded the model
    deadline = time.monotonic() + 90
    while ray_backend.concurrency < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_backend.concurrency == 2 and ray_backend.replacements >= 1
    store.close()


def test_a_backends_own_error_is_raised_and_the_worker_stays(ray_backend: RayBackend) -> None:
    too_long = GenRequest("1 + 1 =", SamplingParams(max_tokens=4096), (0,))  # more than the 2048-token context
    with pytest.raises(BackendError, match="exceeds the context of 2048") as e:
        ray_backend.generate(too_long)
    assert "\n" not in str(e.value) and "on Ray worker" in str(e.value)
    assert ray_backend.concurrency == 2 and ray_backend.in_flight == 0, "an error is not a death"


def test_a_failing_caller_keeps_what_it_was_handed_and_the_work_is_booked(ray_backend: RayBackend) -> None:
    handed: list[int] = []

    def commit(i: int, g: Any) -> None:
        handed.append(i)
        if len(handed) == 2:
            raise OSError("disk full")

    ray_backend.take_waste()
    with pytest.raises(OSError, match="disk full"):
        ray_backend.generate(GenRequest("7 + 8 =", SamplingParams(max_tokens=9, stop=("\n",)), tuple(range(8))), commit)
    assert len(handed) == 2 and ray_backend.in_flight == 0
    assert [w.reason for w in ray_backend.take_waste()] == ["cancelled (the caller failed); tokens unknown"]
    assert ray_backend.concurrency == 2


def test_by_default_one_worker_per_gpu_and_ray_is_left_running(ray_backend: RayBackend, local: Any) -> None:
    import ray

    per_gpu = RayBackend("llamacpp", OPTIONS, num_cpus=0)  # the CPUs are held by the module's two workers
    try:
        assert sorted(w.gpus for w in per_gpu.workers) == [("0",), ("1",)]
        assert per_gpu.concurrency == 2 and per_gpu.model_id == local.model_id
        req = GenRequest("2 + 2 =", SamplingParams(max_tokens=9, stop=("\n",)), (1, 2, 3))
        assert [g.text for g in per_gpu.generate(req)] == [g.text for g in local.generate(req)]
    finally:
        per_gpu.close()
    assert ray.is_initialized(), "closing a backend that joined a running Ray leaves Ray running"
    assert ray_backend.concurrency == 2
