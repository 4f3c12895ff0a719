"""GroupINN: groups of brain regions that carry the prediction.

Yan, Zhang, Zhuang, Marsh and Koutra, "GroupINN: grouping-based interpretable neural network for
classification of limited, noisy brain data", KDD 2019 (section 4 of the reference survey).

A functional-connectivity matrix ``A`` ``(R, R)`` is split into its positive and negative parts
(``A+ = relu(A)``, ``A- = relu(-A)``). A node-grouping layer with a learnt assignment
``W`` ``(R, G)`` reduces each part to a graph over ``G`` groups, ``W^T A+- W`` ``(G, G)``; graph
convolutions (Kipf and Welling 2017) run on the grouped graphs, and a linear layer on their
output gives the class scores. The paper's constraints on ``W``:

* positivity, ``W >= 0``: here exact, ``W = V^2`` elementwise, each column scaled to unit norm
  (a ReLU, ``W = relu(V)``, also gives ``W >= 0``, but a region whose entries all reach 0 gets no
  gradient again and belongs to no group: on the simulated data a third of the regions died);
* orthogonality, ``W^T W = I``: a penalty ``||W^T W - I||_F^2`` (with unit-norm columns, the
  squared overlaps of different groups). Together with positivity it forces the columns to
  have (near) disjoint supports, so every region belongs to one group.

The learnt groups are read off as ``argmax_g W[r, g]`` and compared with planted groups by the
adjusted Rand index (:func:`adjusted_rand_index`); :func:`group_relevance` says which
group-to-group connections drive the decision (gradient times input on the grouped graphs,
Shrikumar et al. 2016).

Besides the paper's losses, :func:`train_groupinn` has an optional *cohesion* term (off by
default), minus the mean over groups of ``w_g^T (A - mean A) w_g / w_g^T w_g`` (:func:`cohesion`),
which rewards groups of regions that move together more than random regions do (the graph-partition objective of spectral
clustering). The benchmark reports the grouping with and without it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from medlens.core.random import generator
from medlens.models.training import fit
from medlens.errors import InputError
from medlens.core.partitions import adjusted_rand_index  # noqa: F401 (re-exported: one implementation)


class GroupINN(nn.Module):
    """Node grouping, graph convolution on the grouped graphs, linear read-out.

    Registered as the architecture ``"groupinn"`` through :data:`medlens.models.io.ENTRY_POINTS`.

    Parameters
    ----------
    n_regions : int
    n_groups : int
    hidden : int
        Width of the graph convolutions.
    num_classes : int
    layers : int
        Graph-convolution layers per branch.

    Input ``(B, R, R)`` connectivity matrices (symmetric); output logits ``(B, num_classes)``.
    """

    arch = "groupinn"

    def __init__(self, n_regions: int = 90, n_groups: int = 5, hidden: int = 8, num_classes: int = 2,
                 layers: int = 2, seed: int = 0) -> None:
        super().__init__()
        self.config = {"n_regions": n_regions, "n_groups": n_groups, "hidden": hidden,
                       "num_classes": num_classes, "layers": layers, "seed": seed}
        self.input_shape = (n_regions, n_regions)
        # W has unit columns, so an entry of W^T A W sums about R / G connections
        self.graph_scale = n_groups / n_regions
        gen = generator(seed, "init")
        # W = V^2 column-normalised: a random positive start, every region in every group a little
        init = 0.5 + torch.rand(n_regions, n_groups, generator=gen)
        self.assignment_raw = nn.Parameter(init)
        self.convs = nn.ModuleList()
        for _branch in range(2):
            sizes = [n_groups] + [hidden] * layers
            self.convs.append(nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])))
        self.classifier = nn.Linear(2 * n_groups * hidden, num_classes)

    def assignment(self) -> torch.Tensor:
        """The soft assignment ``W`` ``(R, G)``: ``V^2`` with unit-norm columns, non-negative by construction."""
        w = self.assignment_raw.pow(2)
        return w / w.norm(dim=0, keepdim=True).clamp_min(1e-12)

    def groups(self) -> torch.Tensor:
        """Hard groups ``(R,)``: each region's largest assignment."""
        return self.assignment().detach().argmax(1)

    def grouped(self, conn: torch.Tensor) -> torch.Tensor:
        """Grouped graphs ``(B, 2, G, G)``: ``W^T A+ W`` and ``W^T A- W``."""
        if conn.ndim != 3 or conn.shape[1:] != self.input_shape:
            raise InputError(f"GroupINN expects connectivity (batch, {self.input_shape[0]}, {self.input_shape[1]}), "
                             f"got {tuple(conn.shape)}")
        w = self.assignment()
        parts = torch.stack([torch.relu(conn), torch.relu(-conn)], 1)  # (B, 2, R, R)
        return w.T @ parts @ w

    def from_grouped(self, grouped: torch.Tensor) -> torch.Tensor:
        """Logits from grouped graphs ``(B, 2, G, G)``."""
        b, _, g, _ = grouped.shape
        eye = torch.eye(g, dtype=grouped.dtype, device=grouped.device)
        outs = []
        for branch, convs in enumerate(self.convs):
            # self loops, and a fixed scale instead of the degree normalisation D^-1/2 (A+I) D^-1/2:
            # with one-hot node features that normalisation divides out how strongly a group is
            # connected, which is what tells the classes apart
            a_hat = grouped[:, branch] * self.graph_scale + eye
            h = eye.expand(b, g, g)  # one-hot node features: group identity
            for conv in convs:
                h = torch.relu(a_hat @ conv(h))
            outs.append(h.reshape(b, -1))
        return self.classifier(torch.cat(outs, 1))

    def forward(self, conn: torch.Tensor) -> torch.Tensor:
        return self.from_grouped(self.grouped(conn))


def orthogonality_penalty(w: torch.Tensor) -> torch.Tensor:
    """``||W^T W - I||_F^2`` for an assignment ``(R, G)``."""
    eye = torch.eye(w.shape[1], dtype=w.dtype, device=w.device)
    return (w.T @ w - eye).pow(2).sum()


def cohesion(w: torch.Tensor, conn: torch.Tensor) -> torch.Tensor:
    """Mean over groups of ``w_g^T (A - a) w_g / w_g^T w_g``, averaged over a batch ``(B, R, R)``.

    ``a`` is each subject's mean off-diagonal connectivity, so that a group scores its
    connectivity above what random regions share (the idea of modularity, Newman 2006; without
    it the all-positive Perron vector of a correlation matrix beats every grouping). Each term is
    the Rayleigh quotient of a group's assignment column; with non-negative, orthogonal columns
    the sum is largest for a partition into cohesive groups (the relaxation behind spectral
    clustering, Shi and Malik 2000).
    """
    r = conn.shape[-1]
    mean = conn.sum((-2, -1), keepdim=True) / (r * (r - 1))  # off-diagonal mean, (B, 1, 1)
    centred = conn - mean
    inner = (w.T @ centred @ w).diagonal(dim1=1, dim2=2).mean(0)  # (G,)
    # the diagonal of conn is 0, of centred -mean: remove its contribution
    inner = inner + mean.mean() * w.pow(2).sum(0)
    return (inner / (w.pow(2).sum(0) + 1e-12)).mean()


def train_groupinn(
    model: GroupINN, conn: torch.Tensor, labels: torch.Tensor, *, epochs: int = 600, lr: float = 2e-2,
    orthogonality: float = 3.0, cohesion_weight: float = 0.0, weight_decay: float = 1e-3, seed: int = 0,
    batch_size: int | None = None,
) -> list[dict[str, float]]:
    """Cross-entropy + ``orthogonality * ||W^T W - I||^2`` (- ``cohesion_weight * cohesion``).

    Adam; full batch by default (the data sets are small: tens to hundreds of subjects).

    Returns
    -------
    list of dict
        Per epoch: ``loss``, ``ce``, ``orthogonality``.
    """
    if len(conn) != len(labels):
        raise InputError(f"{len(conn)} connectivity matrices but {len(labels)} labels")
    gen = generator(seed, "batches")
    opt = torch.optim.Adam([
        {"params": [model.assignment_raw], "weight_decay": 0.0},
        {"params": [p for n, p in model.named_parameters() if n != "assignment_raw"], "weight_decay": weight_decay},
    ], lr=lr)
    n = len(conn)
    bs = batch_size or n

    def batches(epoch: int):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            yield order[start : start + bs]

    def step_loss(idx: torch.Tensor) -> tuple:
        ce = nn.functional.cross_entropy(model(conn[idx]), labels[idx])
        w = model.assignment()
        ortho = orthogonality_penalty(w)
        loss = ce + orthogonality * ortho
        if cohesion_weight:
            loss = loss - cohesion_weight * cohesion(w, conn[idx])
        return loss, len(idx), {"ce": ce, "orthogonality": ortho}

    history = fit(model, batches, step_loss, epochs=epochs, optimizer=opt, desc="training GroupINN")
    model.eval()
    return history


def match_groups(learnt: torch.Tensor, planted: torch.Tensor) -> torch.Tensor:
    """Rename learnt groups to the planted groups they overlap most (Hungarian matching):
    ``perm[learnt_group] = planted_group``, ``(G,)`` int64."""
    from scipy.optimize import linear_sum_assignment

    g = int(max(int(learnt.max()), int(planted.max()))) + 1
    overlap = torch.zeros(g, g, dtype=torch.float64)
    overlap.index_put_((learnt.long(), planted.long()), torch.ones(len(learnt), dtype=torch.float64), accumulate=True)
    rows, cols = linear_sum_assignment(-overlap.numpy())
    perm = torch.empty(g, dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return perm


def group_relevance(model: GroupINN, conn: torch.Tensor, target: int = 1, reference: int | None = 0) -> torch.Tensor:
    """Which group-to-group connections drive the decision: ``(2, G, G)`` (positive, negative part).

    Gradient times input of the score ``logit[target] - logit[reference]`` (or ``logit[target]``
    when ``reference`` is None) with respect to the grouped graphs ``W^T A+- W``, averaged over
    the subjects in ``conn`` ``(B, R, R)``, and symmetrised (``(M + M^T) / 2``): a grouped
    graph is symmetric, so entries ``(g, h)`` and ``(h, g)`` are one connection; the sum over
    entries is unchanged, a first-order share of the score.
    """
    model.eval()
    with torch.enable_grad():
        grouped = model.grouped(conn).detach().requires_grad_(True)
        logits = model.from_grouped(grouped)
        score = logits[:, target] - (logits[:, reference] if reference is not None else 0.0)
        (grad,) = torch.autograd.grad(score.sum(), grouped)
    rel = (grad * grouped).detach().mean(0)  # (2, G, G)
    return (rel + rel.transpose(1, 2)) / 2


@dataclass
class LogisticBaseline:
    """Logistic regression on the flattened upper triangle of the connectivity.

    Attributes
    ----------
    accuracy : float
        Test accuracy.
    C : float
        The inverse penalty chosen by cross-validation on the training subjects.
    """

    accuracy: float
    C: float


def logistic_baseline(train_conn: torch.Tensor, train_labels: torch.Tensor, test_conn: torch.Tensor,
                      test_labels: torch.Tensor, *, folds: int = 5, seed: int = 0) -> LogisticBaseline:
    """L2 logistic regression (scikit-learn ``LogisticRegressionCV``) on the ``R (R - 1) / 2``
    upper-triangle entries, penalty chosen by ``folds``-fold cross-validation."""
    try:
        from sklearn.linear_model import LogisticRegressionCV
    except ImportError as err:  # pragma: no cover - optional dependency
        raise InputError("the logistic-regression baseline needs scikit-learn: pip install 'medlens[systems]'") from err
    r = train_conn.shape[-1]
    iu = torch.triu_indices(r, r, 1)
    xtr = train_conn[:, iu[0], iu[1]].double().numpy()
    xte = test_conn[:, iu[0], iu[1]].double().numpy()
    clf = LogisticRegressionCV(Cs=10, cv=folds, max_iter=2000, random_state=seed, scoring="accuracy")
    with warnings.catch_warnings():  # scikit-learn's notices of future default changes
        warnings.simplefilter("ignore", FutureWarning)
        clf.fit(xtr, train_labels.numpy())
    acc = float((clf.predict(xte) == test_labels.numpy()).mean())
    return LogisticBaseline(acc, float(clf.C_[0]))
