"""The two engines that run the per-case code path: in-process, and Ray actors.

Both hand fixed batches of case indices to a :class:`Work` (by default :data:`AUDIT`, which
runs :func:`medlens.audit.cases.audit_batch`; ``medlens predict`` passes its own) and pass each
finished batch to ``on_done`` (the driver commits it to the store), so their results are
identical.

``local``
    in-process, one batch after another; nothing to start.
``ray``
    each worker is a Ray actor (Moritz et al., "Ray: a distributed framework for emerging AI
    applications", OSDI 2018) that holds the model (shipped once through the object store, so
    no node needs the model file) and opens the data source itself, so inputs stream from
    storage to the workers and only results travel back to the driver. Each actor has at most
    two batches in flight. An actor lost with its node costs only its unfinished batches: they
    are resubmitted to a replacement actor, placed by Ray on a live node.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from medlens.audit.cases import AuditSettings, CaseFailure, CaseResult, audit_batch
from medlens.audit.sources import open_source
from medlens.errors import InputError, MedlensError

__all__ = ["AUDIT", "ENGINES", "OnDone", "Work", "run_local", "run_ray"]

ENGINES = ("local", "ray")
OnDone = Callable[[list[CaseResult | CaseFailure], str], None]
MAX_ATTEMPTS = 4  # a batch whose worker died this often is a problem of the batch, not the cluster


def _audit_indices(model, source, indices: Sequence[int], settings: AuditSettings) -> list[CaseResult | CaseFailure]:
    """The batch's results, and a :class:`CaseFailure` for each case that could not be read."""
    batch = source.load(indices)
    failures: list[CaseResult | CaseFailure] = [CaseFailure(i, source.names[i], err) for i, err in batch.failed.items()]
    if batch.x is None:
        return failures
    return audit_batch(model, batch.x, None, labels=batch.labels, masks=batch.masks, indices=batch.indices,
                       cases=batch.cases, settings=settings) + failures


@dataclass(frozen=True)
class Work:
    """What an engine does with a batch: ``open(spec)`` gives the data source (once per worker),
    ``run(model, source, indices, settings)`` the batch's results. Both are module-level functions,
    so that a Ray actor receives them by reference."""

    open: Callable[[Any], Any]
    run: Callable[..., list]


#: The audit's work: cases from the case workflow, each audited by :func:`audit_batch`.
AUDIT = Work(open_source, _audit_indices)


def run_local(model: torch.nn.Module, spec: Any, batches: Sequence[Sequence[int]], settings: Any,
              on_done: OnDone, *, work: Work = AUDIT, source: Any = None) -> None:
    """Run every batch in this process, in order, on ``source`` when the caller opened it already
    (its data read once, each of its warnings said once), else on ``work.open(spec)``."""
    source = work.open(spec) if source is None else source
    worker = f"local:{socket.gethostname()}:{os.getpid()}"
    for indices in batches:
        on_done(work.run(model, source, indices, settings), worker)


def model_to_bytes(model: torch.nn.Module, meta: dict) -> bytes:
    """The model as medlens model-file bytes (what :func:`medlens.models.io.save_model` writes)."""
    import tempfile

    from medlens.core.targets import MultiLabel
    from medlens.models.io import save_model

    if isinstance(model, MultiLabel):  # the file says it (meta multilabel): model_from_bytes wraps it again
        model, meta = model.model, {**meta, "multilabel": True}
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(model, os.path.join(tmp, "model.pt"), meta)
        return path.read_bytes()


def model_from_bytes(blob: bytes) -> torch.nn.Module:
    import tempfile

    from medlens.models.io import load_model

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        with open(path, "wb") as fh:
            fh.write(blob)
        model, meta = load_model(path)
    if meta.get("multilabel") is True:
        from medlens.core.targets import MultiLabel

        model = MultiLabel(model).eval()
    return model


class _Worker:
    """Body of the Ray actor: a model, a data source and the per-case code path."""

    def __init__(self, model_blob: bytes, spec: Any, settings: Any, threads: int, work: Work = AUDIT) -> None:
        torch.set_num_threads(max(1, int(threads)))
        self.model = model_from_bytes(model_blob)
        self.spec = spec
        self.settings = settings
        self.work = work
        self.source = None
        import ray

        self.name = f"ray:{ray.get_runtime_context().get_node_id()[:8]}:{os.getpid()}"

    def run(self, indices: list[int]) -> tuple[list[CaseResult | CaseFailure], str]:
        if self.source is None:
            self.source = self.work.open(self.spec)
        return self.work.run(self.model, self.source, indices, self.settings), self.name

    def ping(self) -> str:
        return self.name


def run_ray(
    model_blob: bytes,
    spec: Any,
    batches: Sequence[Sequence[int]],
    settings: Any,
    on_done: OnDone,
    *,
    work: Work = AUDIT,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    in_flight: int = 2,
) -> dict:
    """Run the batches on Ray actors; ``on_done`` is called in the driver as each one finishes.

    Parameters
    ----------
    model_blob : bytes
        The model file's bytes (:func:`model_to_bytes`).
    address : str, optional
        A running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); without it, an
        existing ``ray.init`` in this process is used, else a local Ray is started.
    workers : int, optional
        Number of actors; default the cluster's CPUs divided by ``cpus_per_worker``.

    Returns
    -------
    dict
        ``{"workers": n, "retried_batches": n, "replaced_workers": n}``.
    """
    try:
        import ray
        from ray.exceptions import RayActorError, RayTaskError
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise MedlensError("the ray engine needs Ray: pip install 'medlens[ray]'") from err
    started_here = False
    actors: list = []
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": workers or os.cpu_count()}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        started_here = True
    try:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
        if workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        remote = ray.remote(num_cpus=cpus_per_worker, max_restarts=0, max_task_retries=0)(_Worker)
        blob_ref = ray.put(model_blob)
        threads = max(1, int(cpus_per_worker))

        def new_actor():
            return remote.remote(blob_ref, spec, settings, threads, work)

        actors.extend(new_actor() for _ in range(workers))
        queue = deque((list(b), 0) for b in batches)
        pending: dict = {}  # ref -> (actor slot, indices, attempts)
        load = [0] * workers
        stats = {"workers": workers, "retried_batches": 0, "replaced_workers": 0}

        def submit() -> None:
            for slot in range(workers):
                while load[slot] < in_flight and queue:
                    indices, attempts = queue.popleft()
                    ref = actors[slot].run.remote(indices)
                    pending[ref] = (slot, indices, attempts)
                    load[slot] += 1

        submit()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            slot, indices, attempts = pending.pop(ref)
            load[slot] -= 1
            try:
                results, name = ray.get(ref)
            except RayTaskError as err:  # the per-case code raised: a problem of the input
                cause = err.cause if isinstance(getattr(err, "cause", None), BaseException) else None
                if isinstance(cause, MedlensError):
                    raise cause from None
                raise
            except RayActorError:
                if attempts + 1 >= MAX_ATTEMPTS:
                    raise MedlensError(f"cases {indices[0]}..{indices[-1]} failed on {MAX_ATTEMPTS} workers in a row")
                stats["retried_batches"] += 1
                queue.appendleft((indices, attempts + 1))
                dead = actors[slot]
                actors[slot] = new_actor()
                stats["replaced_workers"] += 1
                # every other batch in flight on the dead actor fails the same way: requeue them now
                for other, (s, idx, att) in list(pending.items()):
                    if s == slot:
                        pending.pop(other)
                        load[slot] -= 1
                        queue.appendleft((idx, att + 1))
                        stats["retried_batches"] += 1
                ray.kill(dead, no_restart=True)
                submit()
                continue
            on_done(results, name)
            submit()
        return stats
    finally:
        for actor in actors:  # on a user's cluster, actors must not outlive the run (errors too)
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead with its node
                pass
        if started_here:
            ray.shutdown()
