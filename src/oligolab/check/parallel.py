"""Where chunks are checked: in this process, in local worker processes, or on a Dask cluster (``local:N`` starts
one here; ``tcp://host:8786`` joins a running one). By default a collection is checked in this process up to
:data:`INLINE_NT` nucleotides and on local worker processes (every core) past that: starting workers, each building
its own checker and caches, costs more than it saves on a small collection (the shipped 3,585 genomes took 13.8 s on
two workers against 9.4 s in one process). Every way gives the same results: a chunk's result does not depend on the
worker that checked it, and the driver merges results in chunk order.

A worker process that dies takes only its chunks with it: local workers are restarted and the chunks they held
are checked again; Dask reschedules them on the remaining workers.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import InputError

Task = Callable[[Any], Any]

#: nucleotides the default checks in this process before it starts worker processes for the rest (400 Mnt: about
#: 13,000 SARS-CoV-2 genomes, where two workers start to pay for their start-up and cold caches)
INLINE_NT = 400_000_000


def local_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        return os.cpu_count() or 1


class Inline:
    """Chunks checked one after the other in this process."""

    workers = 1
    name = "Inline"
    inline_cpu_s = 0.0  #: CPU seconds of this process spent checking chunks (not a worker's)

    def map_unordered(self, fn: Task, items: Iterable[Any], pool_fn: Task | None = None) -> Iterator[Any]:
        for item in items:
            cpu0 = time.process_time()
            result = fn(item)
            self.inline_cpu_s += time.process_time() - cpu0
            yield result

    def close(self) -> None:
        pass


class LocalProcesses:
    """Chunks checked in ``workers`` local processes (forkserver: each starts from a process that has already
    imported the checker), at most two chunks per worker in flight so memory stays bounded."""

    def __init__(self, workers: int):
        import multiprocessing

        self.workers = workers
        self.name = "LocalProcesses"
        self.inline_cpu_s = 0.0
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["oligolab.check.worker"])
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers, mp_context=self._context, initializer=_exit_with, initargs=(os.getpid(),)
        )

    def map_unordered(self, fn: Task, items: Iterable[Any], pool_fn: Task | None = None) -> Iterator[Any]:
        fn = pool_fn or fn
        pending: dict[Future, Any] = {}
        source = iter(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * self.workers:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                pending[self._pool.submit(fn, item)] = item
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:  # a worker died (killed, out of memory): check its chunks again
                    pending = self._restart(fn, [item, *pending.values()])

    def _restart(self, fn: Task, items: list[Any]) -> dict[Future, Any]:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        return {self._pool.submit(fn, item): item for item in items}

    def close(self) -> None:
        self._pool.shutdown()


class InlineThenProcesses(Inline):
    """The default: the first ``inline_chunks`` chunks in this process; if the collection holds more, the rest in
    ``workers`` local processes (``pool_fn``: the task as a worker runs it, e.g. with one engine thread)."""

    def __init__(self, workers: int, inline_chunks: int):
        self.pool_workers = workers
        self.inline_chunks = inline_chunks
        self._pool: LocalProcesses | None = None

    def map_unordered(self, fn: Task, items: Iterable[Any], pool_fn: Task | None = None) -> Iterator[Any]:
        source = iter(items)
        yield from super().map_unordered(fn, itertools.islice(source, self.inline_chunks))
        rest = next(source, None)
        if rest is None:
            return
        self._pool = LocalProcesses(self.pool_workers)
        self.workers, self.name = self.pool_workers, "Inline+LocalProcesses"
        yield from self._pool.map_unordered(fn, itertools.chain([rest], source), pool_fn)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def _exit_with(driver: int, every_s: float = 1.0) -> None:
    """In a local worker: end this process when the driver ``driver`` is gone. A driver killed outright (SIGKILL,
    the out-of-memory killer) cannot stop its workers, and they would wait for work for ever, each holding its
    caches (hundreds of MiB)."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(every_s)
            try:
                os.kill(driver, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover  (the id now belongs to another user's process)
                os._exit(1)

    threading.Thread(target=watch, name="oligolab-exit-with-driver", daemon=True).start()


class DaskCluster:
    """Chunks checked as tasks on a Dask cluster (distributed); results come back to this process."""

    def __init__(self, address: str):
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover  (a declared dependency)
            raise InputError(None, "--cluster needs the 'distributed' package", "pip install distributed") from None
        self._cluster = None
        if address.startswith("local:"):
            n = _count(address[len("local:") :])
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            address = self._cluster.scheduler_address
        try:
            self.client = Client(address, timeout=30)
        except OSError as exc:
            raise InputError(
                None,
                f"cannot reach the Dask scheduler at {address} ({exc})",
                "start it (dask scheduler) or give --cluster local:N",
            ) from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        self.name = "DaskCluster"
        self.inline_cpu_s = 0.0

    def map_unordered(self, fn: Task, items: Iterable[Any], pool_fn: Task | None = None) -> Iterator[Any]:
        fn = pool_fn or fn
        from distributed import as_completed

        source = iter(items)
        batch = as_completed(loop=self.client.loop)  # this client's loop, whatever other clients the process has
        for in_flight, item in enumerate(source, start=1):
            batch.add(self.client.submit(fn, item, pure=False, retries=2))
            if in_flight >= 2 * self.workers:
                break
        for future in batch:
            yield future.result()
            future.release()
            item = next(source, None)
            if item is not None:
                batch.add(self.client.submit(fn, item, pure=False, retries=2))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InputError(
            None,
            f"--cluster local:{text}: the number of workers must be a positive whole number",
            "write e.g. --cluster local:4",
        )
    return int(text)


def executor(workers: int | None, cluster: str | None, inline_chunks: int = 0) -> Inline | LocalProcesses | DaskCluster:
    """Where to check: ``cluster`` (Dask) if given, else ``workers`` local processes (1: this process; None: the
    first ``inline_chunks`` chunks in this process and the rest, if any, on every core)."""
    if cluster:
        if not (cluster.startswith("local:") or "://" in cluster):
            raise InputError(
                None,
                f"--cluster {cluster!r} is neither local:N nor a scheduler address",
                "write --cluster local:4 or --cluster tcp://host:8786",
            )
        return DaskCluster(cluster)
    if workers is None:
        n = local_cores()
        return InlineThenProcesses(n, inline_chunks) if n > 1 else Inline()
    n = workers
    if n < 1:
        raise InputError(None, f"--workers {n}: at least one worker is needed", "give --workers 1 or more")
    return Inline() if n == 1 else LocalProcesses(n)
