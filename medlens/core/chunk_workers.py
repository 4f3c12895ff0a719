"""Chunks of a forward-only run evaluated side by side, one torch thread each.

An engine run splits its rows into chunks; by default each chunk is one batch on torch's
intra-op threads, which meet at a barrier after every operator. On a machine whose cores are
shared with another job, the thread on the busy core holds the others at each barrier, so two
threads give about one core's work. Two chunks evaluated at once by two Python threads, each
running its operators on one torch thread, meet only when a chunk ends: the thread on the free
core keeps going. (Torch releases the GIL inside its operators, so the threads do run at once.)

Only forward-only runs whose ``build`` may be called from several threads use this (the method
says so: :func:`medlens.core.engine.run`'s ``parallel``); their results are handed back in chunk
order, so the caller consumes them exactly as a sequential run would.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterator, Sequence, TypeVar

import torch

Result = TypeVar("Result")

#: Ranges started per worker beyond the one whose result is awaited.
AHEAD = 2


def worker_count(n_chunks: int, device: torch.device) -> int:
    """How many chunks to evaluate at once: torch's intra-op thread count on a CPU (one thread
    per chunk), at most one per chunk; 1 (sequential) on other devices."""
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), n_chunks))


def in_order(ranges: Sequence[tuple[int, int]], task: Callable[[int, int], Result],
             workers: int) -> Iterator[Result]:
    """``task(start, stop)`` for every range, ``workers`` at a time, each worker's operators on
    one torch thread; yields the results in the order of ``ranges``. At most
    ``AHEAD * workers`` ranges are started beyond the one the caller waits for (so results
    waiting to be consumed stay few); a task's exception is raised here, and the ranges not
    started yet are dropped."""
    if workers <= 1:
        for start, stop in ranges:
            yield task(start, stop)
        return
    pending = iter(ranges)
    with ThreadPoolExecutor(max_workers=workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        started = deque(pool.submit(task, *r) for r in islice(pending, AHEAD * workers))
        try:
            while started:
                result = started.popleft().result()
                started.extend(pool.submit(task, *r) for r in islice(pending, 1))
                yield result
        finally:
            for future in started:
                future.cancel()
