"""Compute backends: where the per-customer work of a step runs (`compute` in params.yaml).

`local` runs every partition in this process, one after the other or `threads` at once. `dask` runs them as tasks on a
`dask.distributed` cluster: a `LocalCluster` of `workers` processes, or the scheduler at
`scheduler` (a real cluster whose workers have shoprec installed and see the project's files at the
same paths). Steps hand a backend the same function and the same customer partitions either way, so
mapped work gives the same results on both; large shared inputs (fitted candidate sources, the
ranker) go to each worker once, not per task. (Ranker training on dask is `lightgbm.dask`'s
data-parallel training, see ranker.fit: close to, not identical with, the local model.)
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.core.errors import InputError

if TYPE_CHECKING:
    from distributed import Client, Future

log = logging.getLogger(__name__)
T = TypeVar("T")
F = TypeVar("F")  # a pending result: a thread's or a dask future
CONNECT_TIMEOUT = "30s"  # to a remote scheduler


class LocalBackend:
    """Every partition in this process: one after the other, or `threads` at once (they share every input;
    numba, LightGBM and numpy release the GIL, so a second thread fills the core the first leaves idle)."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def map(self, fn: Callable[..., T], parts: Iterable[Any], **shared: Any) -> Iterator[T]:
        """fn(part, **shared) for each part, lazily and in order (at most two parts per thread in flight)."""
        if self.threads == 1:
            return progress((fn(part, **shared) for part in parts), fn)
        return progress(self._threaded(fn, parts, **shared), fn)

    def _threaded(self, fn: Callable[..., T], parts: Iterable[Any], **shared: Any) -> Iterator[T]:
        with ThreadPoolExecutor(self.threads, thread_name_prefix="shoprec-part") as pool:
            yield from in_order(
                lambda part: pool.submit(fn, part, **shared),
                parts,
                2 * self.threads,
                lambda future: future.result(),
                lambda pending: [future.cancel() for future in pending],
            )


class DaskBackend:
    """Partitions as tasks on a dask.distributed cluster; results come back in the order of `parts`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def workers(self) -> int:
        return max(len(self.client.scheduler_info(n_workers=-1)["workers"]), 1)

    def map(self, fn: Callable[..., T], parts: Iterable[Any], **shared: Any) -> Iterator[T]:
        """fn(part, **shared) for each part, on the workers, in order; `shared` goes to each worker once.

        Parts are read from `parts` only as workers free up (at most two tasks per worker in flight), so
        neither the inputs nor the results of every partition are ever held at once.
        """
        return progress(self._map(fn, parts, **shared), fn)

    def _map(self, fn: Callable[..., T], parts: Iterable[Any], **shared: Any) -> Iterator[T]:
        # each argument whole (scatter would split a list or dict into one future per element or key)
        kwargs = {key: self.client.scatter([value], broadcast=True, hash=False)[0] for key, value in shared.items()}
        try:
            yield from in_order(
                lambda part: self.client.submit(fn, part, pure=False, **kwargs),
                parts,
                2 * self.workers,
                _take,
                self.client.cancel,
            )
        finally:
            self.client.cancel(list(kwargs.values()))


def in_order(
    submit: Callable[[Any], F],
    parts: Iterable[Any],
    in_flight: int,
    result: Callable[[F], T],
    cancel: Callable[[list[F]], Any],
) -> Iterator[T]:
    """The results of `submit(part)` for each part, in the order of `parts`, with at most `in_flight`
    submitted and not yet taken (so `parts` is read only as results are taken); what is still
    pending when the iteration stops (an error, or the caller stopped reading) goes to `cancel`."""
    pending: deque[F] = deque()
    try:
        for part in parts:
            pending.append(submit(part))
            if len(pending) >= in_flight:
                yield result(pending.popleft())
        while pending:
            yield result(pending.popleft())
    finally:
        cancel(list(pending))


def progress(results: Iterator[T], fn: Callable[..., Any]) -> Iterator[T]:
    """The partitions done so far as a progress bar on a terminal (none in logs: tqdm's disable=None)."""
    from tqdm import tqdm

    return iter(tqdm(results, desc=getattr(fn, "__name__", "partitions"), unit="part", disable=None, leave=False))


def _take(future: Future) -> Any:
    try:
        return future.result()
    finally:
        future.release()


Backend = LocalBackend | DaskBackend
LOCAL = LocalBackend()


@contextmanager
def open_backend(cfg: dict[str, Any]) -> Iterator[Backend]:
    """The backend of the `compute` params (checked when they load, pipelines/core/params.py) for the
    duration of a step (a dask cluster is started and stopped here)."""
    if cfg["backend"] == "local":
        yield LocalBackend(cfg["threads"])
        return
    from distributed import Client, LocalCluster

    if cfg["scheduler"]:
        try:
            client = Client(cfg["scheduler"], timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise InputError(f"params: compute.scheduler {cfg['scheduler']!r}: no scheduler answers ({exc})") from None
        with client:
            yield DaskBackend(client)
        return
    with (
        LocalCluster(
            n_workers=cfg["workers"],
            threads_per_worker=cfg["threads_per_worker"],
            memory_limit=cfg["memory_limit"],
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("compute: dask LocalCluster with %d workers", cfg["workers"])
        yield DaskBackend(client)
