"""Chunks of a forward-only run evaluated side by side, one torch thread each.

An engine run splits its rows into chunks; by default each chunk is one batch on torch's
intra-op threads, which meet at a barrier after every operator. On a machine whose cores are
shared with another job, the thread on the busy core holds the others at each barrier, so two
threads give about one core's work. Two chunks evaluated at once by two Python threads, each
running its operators on one torch thread, meet only when a chunk ends: the thread on the free
core keeps going. (Torch releases the GIL inside its operators, so the threads do run at once.)

Only forward-only runs whose ``build`` may be called from several threads use this (the method
says so: :func:`medlens.core.engine.run`'s ``parallel``); their results are handed back in chunk
order, so the caller consumes them exactly as a sequential run would. A model that keeps state in
its own attributes during ``forward`` (``self.features = self.backbone(x); return
self.head(self.features)``) would mix two chunks' values if called twice at once, so the first
chunk a model meets is evaluated alone while its modules' attributes are watched
(:func:`keeps_state`), and a model seen changing them is evaluated one chunk at a time.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Callable, Iterator, Sequence, TypeVar
from weakref import WeakKeyDictionary

import torch
from torch import nn

Result = TypeVar("Result")

#: Ranges started per worker beyond the one whose result is awaited.
AHEAD = 2


#: Per model seen: whether its forward changed its modules' attributes (:func:`keeps_state`).
_SEEN: WeakKeyDictionary = WeakKeyDictionary()


def _attributes(model: nn.Module) -> list[tuple[int, str, int, Any]]:
    """The public attributes of every module (not parameters, buffers or submodules, which torch
    keeps apart), each by the identity of its value and, for a container, its length."""
    return [(i, name, id(value), len(value) if isinstance(value, (list, dict, set)) else None)
            for i, module in enumerate(model.modules()) for name, value in vars(module).items()
            if not name.startswith("_") and name not in ("training", "forward")]


def keeps_state(model: nn.Module, call: Callable[[], Result]) -> tuple[Result, bool]:
    """``call()`` (a forward pass of ``model``), and whether ``model`` keeps state in its modules'
    attributes during it (remembered per model: later calls only look the answer up)."""
    if model in _SEEN:
        return call(), _SEEN[model]
    before = _attributes(model)
    result = call()
    _SEEN[model] = _attributes(model) != before
    return result, _SEEN[model]


def known_stateless(model: nn.Module) -> bool:
    """``model`` was seen not to change its modules' attributes in a forward pass."""
    return _SEEN.get(model) is False


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
