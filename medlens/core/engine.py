"""The one place that runs a model.

Every method hands its inputs to :func:`run`: path methods (integrated gradients, SmoothGrad)
hand their interpolated or noisy copies, perturbation methods (occlusion, RISE, deletion) their
masked copies, built lazily chunk by chunk so that thousands of perturbations of a volume never
sit in memory at once. The chunk size comes from a memory budget (:class:`Budget`), estimated
from one probe pass of a single sample; an explicit ``batch_size`` overrides it.

Two modes:

``"forward"``
    model outputs only, under :func:`torch.inference_mode`.
``"gradient"``
    outputs and the gradient of the target score with respect to the inputs, one backward
    pass per chunk (the scores of different rows are independent, so the gradient of their
    sum is the per-row gradient).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple, Union

import torch
from torch import nn

from medlens.core import chunk_workers
from medlens.core.hooks import Capture, capture, on_activations
from medlens.core.targets import Target
from medlens.errors import InputError, MedlensError

Built = Union[torch.Tensor, Tuple[torch.Tensor, Any]]
BuildFn = Callable[[int, int], Built]
ConsumeFn = Callable[[int, int, torch.Tensor, Optional[torch.Tensor], Any], None]

DEFAULT_MEMORY_FRACTION = 0.25
DEFAULT_MEMORY_CAP_MB = 1024  # larger chunks do not run faster on CPUs; they only cost memory
# On CPUs a chunk whose working set stays near the last-level cache runs fastest: on the
# reference CNNs (benchmarks/attribution.py) chunks of hundreds of MB cost ~1.5-2.5x more per
# input than chunks of a few inputs, while a chunk of ONE input takes slower convolution paths
# (3D convolutions ~1.7x slower per input than in pairs). Without an explicit budget, CPU chunks
# therefore aim at this working set, with at least two inputs when the memory budget allows.
CPU_CHUNK_TARGET_MB = 16


@dataclass(frozen=True)
class Budget:
    """How many inputs the engine may evaluate at once.

    Parameters
    ----------
    batch_size : int or None
        Exact number of inputs per chunk; overrides ``memory_mb``.
    memory_mb : float or None
        Memory the engine may use for one chunk. Default: a quarter of the available memory
        (free device memory on a GPU), at most 1 GiB on a CPU.
    """

    batch_size: int | None = None
    memory_mb: float | None = None

    def __post_init__(self) -> None:
        from medlens.errors import InputError

        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise InputError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.memory_mb is not None and not self.memory_mb > 0:
            raise InputError(f"memory_mb must be positive, got {self.memory_mb!r}")

    def kwargs(self) -> dict[str, Any]:
        """``{"batch_size": ..., "memory_mb": ...}``: how public functions take a budget."""
        return {"batch_size": self.batch_size, "memory_mb": self.memory_mb}


@dataclass
class Result:
    """Concatenated outputs (and input gradients) of a :func:`run` without ``consume``."""

    outputs: torch.Tensor | None
    gradients: torch.Tensor | None
    chunk_size: int


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating dtype of the model's first floating parameter (or buffer); ``None`` for a
    model that holds none."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None


def model_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the model's device and in its floating dtype, values unchanged: raw CT in int16
    Hounsfield units, 8-bit pixels or a float64 array from NumPy reach a float32 model (and a
    float32 batch a float64 or bfloat16 one) as the model computes, since PyTorch's layers refuse
    an input of another dtype and gradients exist only for floating tensors."""
    floating = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    return x.to(model_device(model), model_dtype(model) or floating)


def available_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def budget_bytes(budget: Budget, device: torch.device) -> int:
    if budget.memory_mb is not None:
        return int(budget.memory_mb * 2**20)
    avail = available_memory_bytes(device)
    if device.type == "cuda":
        return int(avail * 0.5)
    return int(min(avail * DEFAULT_MEMORY_FRACTION, DEFAULT_MEMORY_CAP_MB * 2**20))


class ActivationSizes:
    """Records the bytes each leaf module outputs during one pass (a probe, or a real chunk)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, _module, _inputs, out) -> None:
        outs = out if isinstance(out, (tuple, list)) else (out,)
        self.sizes.append(sum(o.numel() * o.element_size() for o in outs if isinstance(o, torch.Tensor)))

    def per_item(self, sample: torch.Tensor, mode: str) -> int:
        """Estimated peak memory of one input ``sample`` ``(1, *input_shape)`` in a chunk.

        Gradient mode keeps every activation for the backward pass (and their gradients
        transiently); forward mode only keeps a few alive at a time.
        """
        input_bytes = sample.numel() * sample.element_size()
        sizes = self.sizes or [input_bytes]
        if mode == "gradient":
            return max(4 * input_bytes + 2 * sum(sizes), 1)
        return max(3 * input_bytes + 3 * max(sizes), 1)


def bytes_per_item(model: nn.Module, sample: torch.Tensor, mode: str) -> int:
    """Estimated peak memory one input costs in a chunk, from a probe pass of ``sample``.

    Parameters
    ----------
    sample : torch.Tensor
        One input with its batch dimension, ``(1, *input_shape)``.
    mode : {"forward", "gradient"}
    """
    sizes = ActivationSizes()
    with on_activations(model, sizes), torch.inference_mode():
        model(sample)
    return sizes.per_item(sample, mode)


def fitting_chunk(per_item: int, n_items: int, device: torch.device, budget: Budget) -> int:
    """Inputs per chunk when each costs ``per_item`` bytes, under ``budget``."""
    fits = budget_bytes(budget, device) // per_item
    if device.type == "cpu" and budget.memory_mb is None:
        fits = min(fits, max(2, CPU_CHUNK_TARGET_MB * 2**20 // per_item))
    return max(1, min(n_items, fits))


def chunk_size(
    model: nn.Module, sample: torch.Tensor, n_items: int, mode: str, budget: Budget
) -> int:
    """Number of inputs per chunk for ``n_items`` inputs shaped like ``sample`` (a probe pass).

    :func:`run` does not call this: it measures the first input's activations during its own
    first chunk instead. Methods that plan their chunks before running do.
    """
    if budget.batch_size is not None:
        return max(1, min(budget.batch_size, n_items))
    if n_items <= 1:
        return 1  # nothing to decide: skip the probe pass
    device = model_device(model)
    return fitting_chunk(bytes_per_item(model, sample.to(device), mode), n_items, device, budget)


def run(
    model: nn.Module,
    n_items: int,
    build: BuildFn | torch.Tensor,
    *,
    mode: str = "forward",
    target: Target | None = None,
    consume: ConsumeFn | None = None,
    budget: Budget = Budget(),
    layer: nn.Module | None = None,
    finite_outputs: bool = True,
    parallel: bool = False,
) -> Result:
    """Evaluate ``model`` on ``n_items`` inputs in memory-bounded chunks.

    Parameters
    ----------
    model : nn.Module
    n_items : int
        Number of inputs (rows) to evaluate.
    build : callable or torch.Tensor
        ``build(start, stop)`` returns the inputs of rows ``start..stop-1`` as a tensor
        ``(stop-start, *input_shape)``, or a pair ``(inputs, aux)`` whose ``aux`` is handed to
        ``consume`` (masks, for instance). A tensor ``(n_items, *input_shape)`` is sliced.
    mode : {"forward", "gradient"}
    target : Target
        Required in gradient mode; its rows correspond to the ``n_items`` inputs.
    consume : callable, optional
        ``consume(start, stop, outputs, gradients, aux)`` is called after each chunk (outputs
        detached; gradients ``None`` in forward mode). Without it, outputs and gradients are
        concatenated and returned.
    budget : Budget
    layer : nn.Module, optional
        Gradient mode only: differentiate with respect to this layer's output instead of the
        input, so that ``gradients`` are ``(rows, *layer_output_shape)``. Backpropagation then
        stops at the layer: class-activation maps do not pay for the backward pass below it.
    finite_outputs : bool
        Raise ``InputError`` when the model returns NaN or infinite outputs (default). Probes
        that feed NaN on purpose, to trace which outputs an input reaches, turn it off.
    parallel : bool
        Forward mode on a CPU: evaluate the chunks side by side, one torch thread each, as many
        at once as torch has intra-op threads (:mod:`medlens.core.chunk_workers`), each chunk a
        share of the size one sequential chunk would have, so the memory in flight is the same.
        ``build`` is then called from several threads (a method whose ``build`` keeps state
        between calls must not ask for it); ``consume`` is still called in chunk order from
        the calling thread. The outputs do not depend on it. A model seen changing its modules'
        attributes in forward runs one chunk at a time (:func:`chunk_workers.keeps_state`).

    Returns
    -------
    Result
        ``outputs`` ``(n_items, K)`` and ``gradients`` ``(n_items, *input_shape)`` when
        ``consume`` is None, else both ``None``.
    """
    if mode not in ("forward", "gradient"):
        raise ValueError(f"unknown engine mode {mode!r}")
    if mode == "gradient" and target is None:
        raise ValueError("gradient mode needs a target")
    if isinstance(build, torch.Tensor):
        source = build
        build = lambda start, stop: source[start:stop]  # noqa: E731
    device = model_device(model)

    def split(built: Built) -> tuple[torch.Tensor, Any]:
        if isinstance(built, tuple):
            return built[0], built[1]
        return built, None

    # Without an explicit batch size the first chunk is the first input alone, run with its
    # activation sizes recorded: that real pass sizes the other chunks, so no probe pass is spent.
    size = max(1, min(budget.batch_size, n_items)) if budget.batch_size is not None else None
    if size is None and n_items <= 1:
        size = 1
    outputs: list[torch.Tensor] = []
    gradients: list[torch.Tensor] = []
    with ExitStack() as stack:
        record = None
        if layer is not None and mode == "gradient":
            record = stack.enter_context(capture(model, layer, detach=False))
        start = 0
        workers = chunk_workers.worker_count(n_items, device) if parallel and mode == "forward" else 1
        while start < n_items:
            if workers > 1 and (size is not None or start > 0):
                _run_side_by_side(model, build, split, consume, outputs, device, start, n_items, size, workers,
                                  finite_outputs)
                break
            stop = min(start + (size or 1), n_items)
            inputs, aux = split(build(start, stop))
            inputs = inputs.to(device)
            if record is not None:
                record.activation = None  # never differentiate a previous chunk's output
            sizes = ActivationSizes() if size is None else None
            with on_activations(model, sizes) if sizes is not None else nullcontext():
                if mode == "forward":
                    with torch.inference_mode():
                        out = checked_call(model, inputs, first=start == 0, finite=finite_outputs)
                    grad = None
                else:
                    inputs = inputs.detach().requires_grad_(True)
                    with torch.enable_grad():
                        out = checked_call(model, inputs, first=start == 0, finite=finite_outputs)
                        scores = target.take(slice(start, stop))(out)
                        wrt = inputs if record is None else _layer_output(record)
                        grad = _gradient(scores.sum(), wrt, "the input" if record is None else "the differentiated layer")
                    out = out.detach()
            if sizes is not None:
                size = fitting_chunk(sizes.per_item(inputs[:1], mode), n_items, device, budget)
            if consume is not None:
                consume(start, stop, out, grad, aux)
            else:
                outputs.append(out.clone() if mode == "forward" else out)
                if grad is not None:
                    gradients.append(grad)
            start = stop
    if consume is not None:
        return Result(None, None, size)
    return Result(
        torch.cat(outputs) if outputs else None,
        torch.cat(gradients) if gradients else None,
        size,
    )


def _run_side_by_side(model, build, split, consume, outputs, device, start, n_items, size, workers,
                      finite) -> None:
    """Forward mode: rows ``start..n_items-1`` in chunks evaluated ``workers`` at a time
    (:func:`run`'s ``parallel``); each chunk holds a ``workers``-th of ``size`` rows."""
    per_chunk = max(1, -(-size // workers))
    ranges = [(a, min(a + per_chunk, n_items)) for a in range(start, n_items, per_chunk)]

    def evaluate(a: int, b: int):
        inputs, aux = split(build(a, b))
        with torch.inference_mode():
            out = checked_call(model, inputs.to(device), first=a == 0, finite=finite)
        return out, aux

    def take(a: int, b: int, out: torch.Tensor, aux: Any) -> None:
        if consume is not None:
            consume(a, b, out, None, aux)
        else:
            outputs.append(out.clone())

    if not chunk_workers.known_stateless(model):  # the first chunk alone, watching the model's attributes
        (out, aux), stateful = chunk_workers.keeps_state(model, lambda: evaluate(*ranges[0]))
        take(*ranges[0], out, aux)
        ranges, workers = ranges[1:], 1 if stateful else workers
    for (a, b), (out, aux) in zip(ranges, chunk_workers.in_order(ranges, evaluate, workers)):
        take(a, b, out, aux)


#: What a model raises when it cannot take an input: PyTorch's layers raise RuntimeError (wrong
#: channels, wrong dtype) or ValueError (BatchNorm's "expected 4D input"); a forward that needs
#: more arguments than the input raises TypeError. A MedlensError (a ValueError) is never one.
MODEL_CALL_ERRORS = (RuntimeError, ValueError, TypeError)


def _first_line(err: BaseException) -> str:
    """The first line of an error's message (PyTorch's run to many), or its kind when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def shape_error(shape: torch.Size, err: Exception) -> InputError:
    """The one-line error for a model that failed on inputs of the wrong shape (or, for a
    ``TypeError``, that cannot be called with the input alone)."""
    first = _first_line(err)
    if isinstance(err, TypeError):
        return InputError(f"the model cannot be called with the input alone ({first}): wrap it in an "
                          "nn.Module whose forward(x) passes its other arguments")
    dims = ", ".join(map(str, shape[1:]))
    return InputError(f"input of shape (batch, {dims}) does not fit the model: {first}")


def scores_of(out: Any) -> torch.Tensor:
    """The class scores in a model's output: a tensor as it is; a ``logits`` field or attribute
    (a named tuple's, a dataclass's such as ``ModelOutput(loss, logits)``); the first element of
    a tuple or list (MONAI's ViT returns ``(logits, hidden_states)``, networks with deep
    supervision ``(main, auxiliary...)``); a mapping's ``"logits"`` (or its only tensor).

    Raises
    ------
    InputError
        An output holding no such tensor, named by its type.
    """
    if isinstance(out, torch.Tensor):
        return out
    if not isinstance(out, Mapping) and isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, Mapping):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        tensors = [v for v in out.values() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return tensors[0]
        raise InputError(f"the model returned a mapping with keys {', '.join(map(str, out))}; medlens explains "
                         "its 'logits' or its only tensor")
    raise InputError(f"the model returned {type(out).__name__}; medlens explains a tensor of scores, the first "
                     "element of a tuple, or the output's 'logits' (a key or an attribute)")


def checked_call(model: nn.Module, inputs: torch.Tensor, *, first: bool, finite: bool) -> torch.Tensor:
    """``model(inputs)`` with the checks a separate validation pass would make, for free.

    A model that fails on the first chunk was given inputs of the wrong shape (later chunks
    have the same shape, so their errors are the model's own); NaN or infinite outputs make
    every explanation meaningless. A binary classifier's one logit per input, ``(B,)``, is read
    as ``(B, 1)``; an output that is not one row per input cannot be explained per input.
    """
    if first:
        try:
            out = model(inputs)
        except MedlensError:
            raise  # the model's own one-line error (a segmentation target's channel, say)
        except MODEL_CALL_ERRORS as err:
            raise shape_error(inputs.shape, err) from err
    else:
        out = model(inputs)
    out = scores_of(out)
    if out.ndim == 0 or out.shape[0] != len(inputs):
        raise InputError(f"the model returned scores of shape {tuple(out.shape)} for {len(inputs)} input(s); medlens "
                         "explains one row of scores per input (batch first)")
    if out.ndim == 1:
        out = out[:, None]
    if finite and isinstance(out, torch.Tensor) and out.is_floating_point() and not torch.isfinite(out).all():
        raise InputError("the model produced NaN or infinite outputs for this input")
    return out


def no_gradient(what: str) -> str:
    """Why a gradient method cannot explain a model none of whose gradient reaches ``what``."""
    return (f"no gradient reaches {what} from the target score: the model does not use it, detaches it, or runs it "
            "under torch.no_grad() (a frozen backbone) or reentrant checkpointing; occlusion and rise explain such a "
            "model without gradients")


def _gradient(score: torch.Tensor, wrt: torch.Tensor, what: str) -> torch.Tensor:
    """``d score / d wrt``, or one line saying why there is none (``what`` names ``wrt``)."""
    try:
        grad = torch.autograd.grad(score, wrt, allow_unused=True)[0] if score.requires_grad else None
    except RuntimeError as err:  # reentrant checkpointing, an in-place change of a saved tensor
        raise InputError(f"the model's gradient cannot be taken: {_first_line(err)}") from err
    if grad is None:
        raise InputError(no_gradient(what))
    return grad


def _layer_output(record: Capture) -> torch.Tensor:
    activation = record.activation
    if activation is None:
        raise InputError("the chosen layer is not run on the way from the input to the model output")
    if not activation.requires_grad:
        raise InputError(no_gradient("the differentiated layer"))
    return activation


def forward(model: nn.Module, x: torch.Tensor, budget: Budget = Budget()) -> torch.Tensor:
    """Model outputs for a batch ``x``, chunked under ``budget``."""
    return run(model, len(x), x, budget=budget).outputs


def gradient(
    model: nn.Module, x: torch.Tensor, target: Target, budget: Budget = Budget()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``(B, K)`` and input gradients of the target score ``(B, *input_shape)``."""
    result = run(model, len(x), x, mode="gradient", target=target, budget=budget)
    return result.outputs, result.gradients
