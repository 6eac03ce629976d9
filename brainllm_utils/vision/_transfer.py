"""Transfer readouts: linear maps from frozen features to caption embeddings and labels."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from .._utils.device import import_torch as _torch
from .._utils.device import resolve_device
from .._utils.docs import fill_doc
from .._utils.numeric import check_choice, check_finite, check_float, check_int

__all__ = ["mean_average_precision", "transfer_readout", "transfer_readouts", "transfer_table"]


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Macro mean of per-category average precision over categories with a positive.

    ``AP = Σ_k P(k)·rel(k) / n_pos`` over images ranked by score (ties in stable order).

    Parameters
    ----------
    scores : array-like of shape (n_images, n_categories)
        Predicted scores (higher: more likely).
    labels : array-like of shape (n_images, n_categories)
        Multi-hot labels (> 0.5 is positive).

    Returns
    -------
    map : float
        Mean AP over the categories with at least one positive (NaN when none has).

    Examples
    --------
    >>> mean_average_precision(np.array([[0.9], [0.1]]), np.array([[1], [0]]))
    1.0
    """
    scores = check_finite(scores, "scores", ndim=2)
    labels = check_finite(labels, "labels", ndim=2)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have the same shape (n_images, n_categories), got "
                         f"{scores.shape} and {labels.shape}")
    labels = labels > 0.5
    aps = []
    for j in range(labels.shape[1]):
        pos = labels[:, j]
        if not pos.any():
            continue
        order = np.argsort(-scores[:, j], kind="stable")
        rel = pos[order]
        prec = np.cumsum(rel) / np.arange(1, rel.size + 1)
        aps.append(float(prec[rel].sum() / rel.sum()))
    return float(np.mean(aps)) if aps else float("nan")


def _cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(na * nb, 1e-12)


@fill_doc
def transfer_readout(X_train, Y_train, X_test, Y_test, kind: str = "cosine", *, epochs: int = 200,
                     lr: float = 0.05, batch_size: int = 96, seed: int = 0, device="cpu") -> dict:
    """A linear readout from frozen features, trained on train and scored on test.

    Features are z-scored with the training mean/SD. ``kind="cosine"``: linear map to the
    caption embedding, loss 1 − cosine (``CosineEmbeddingLoss``); ``"bce"``: linear map to
    logits, sigmoid BCE on multi-hot labels. Adam (eps 0.1, as the paper), cosine-annealed
    learning rate, seeded batches. Score = mean cosine similarity of the prediction
    (sigmoid probabilities for ``bce``) with the held-out target; floor = mean cosine of
    the mean training target with each held-out target; ``map`` (``bce`` only) = mean
    average precision.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        Frozen features of the training images.
    Y_train : array-like of shape (n_train, n_targets)
        Their targets (caption embeddings or multi-hot labels).
    X_test : array-like of shape (n_test, n_features)
        Features of the held-out images.
    Y_test : array-like of shape (n_test, n_targets)
        Their targets.
    kind : {"cosine", "bce"}, default="cosine"
        ``"cosine"``: linear map to the caption embedding, loss 1 − cosine; ``"bce"``:
        linear map to logits, sigmoid binary cross-entropy on multi-hot labels.
    %(transfer_epochs)s
    %(transfer_lr)s
    %(transfer_batch_size)s
    seed : int, default=0
        Seeds the initial weights (``torch.manual_seed``) and the batch order.
    %(device_cpu)s

    Returns
    -------
    result : dict
        ``score``, ``floor``, ``map`` (or NaN), ``per_image`` (n_test,), ``predictions``
        (n_test, n_targets), ``loss`` (per epoch).
    """
    return transfer_readouts([(X_train, X_test)], Y_train, Y_test, kind, epochs=epochs, lr=lr,
                             batch_size=batch_size, seed=seed, device=device)[0]


@fill_doc
def transfer_readouts(features, Y_train, Y_test, kind: str = "cosine", *, epochs: int = 200,
                      lr: float = 0.05, batch_size: int = 96, seed: int = 0, device="cpu") -> list[dict]:
    """:func:`transfer_readout` for several feature sets of one width at once.

    ``features``: list of ``(X_train, X_test)`` pairs with the same shapes. The readouts are
    trained side by side as one batched linear map (one optimiser step updates all of
    them); each one sees exactly what it would alone — the same initial weights (from
    ``seed``), batches, learning rates and Adam state — so the results equal separate calls
    up to float rounding, in a fraction of the time (the per-step cost is overhead).

    Parameters
    ----------
    features : list of (array-like, array-like)
        ``(X_train, X_test)`` pairs of shapes ``(n_train, n_features)`` and
        ``(n_test, n_features)``, the same for every pair.
    Y_train : array-like of shape (n_train, n_targets)
        Training targets, shared by all readouts.
    Y_test : array-like of shape (n_test, n_targets)
        Held-out targets.
    kind : {"cosine", "bce"}, default="cosine"
        The readout and its loss (as :func:`transfer_readout`).
    %(transfer_epochs)s
    %(transfer_lr)s
    %(transfer_batch_size)s
    seed : int, default=0
        Seeds the initial weights (``torch.manual_seed``) and the batch order.
    %(device_cpu)s

    Returns
    -------
    results : list of dict
        One :func:`transfer_readout` result per pair, in order.
    """
    torch = _torch()
    F = torch.nn.functional
    check_choice(kind, "kind", ("cosine", "bce"))
    epochs = check_int(epochs, "epochs", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_float(lr, "lr", min_value=0, min_inclusive=False)
    seed = check_int(seed, "seed", min_value=0)
    Y_train = check_finite(Y_train, "Y_train", ndim=2, min_size=1, dtype=np.float32)
    Y_test = check_finite(Y_test, "Y_test", ndim=2, min_size=1, dtype=np.float32)
    if Y_train.shape[1] != Y_test.shape[1]:
        raise ValueError(f"Y_train and Y_test must have the same number of targets, got {Y_train.shape} "
                         f"and {Y_test.shape}")
    features = list(features)
    if not features:
        raise ValueError("features holds no (X_train, X_test) pair")
    shapes = {(np.shape(a), np.shape(b)) for a, b in features}
    if len(shapes) != 1:
        raise ValueError(f"transfer_readouts: feature sets differ in shape {sorted(shapes)}")
    for i, (a, b) in enumerate(features):
        a = check_finite(a, f"features[{i}] X_train", ndim=2, dtype=None)
        b = check_finite(b, f"features[{i}] X_test", ndim=2, dtype=None)
        if a.shape[0] != Y_train.shape[0] or b.shape[0] != Y_test.shape[0] or a.shape[1] != b.shape[1]:
            raise ValueError(f"features[{i}]: X_train {a.shape} and X_test {b.shape} must match Y_train "
                             f"{Y_train.shape} and Y_test {Y_test.shape} in rows, and each other in columns")
    xt, xv = [], []
    for X_train, X_test in features:
        X_train, X_test = np.asarray(X_train, np.float32), np.asarray(X_test, np.float32)
        mu, sd = X_train.mean(0), X_train.std(0)
        sd = np.where(sd > 1e-8, sd, 1.0)
        xt.append((X_train - mu) / sd)
        xv.append((X_test - mu) / sd)
    device = resolve_device(device)
    xt = torch.from_numpy(np.stack(xt)).to(device)  # (R, n, d)
    xv = torch.from_numpy(np.stack(xv)).to(device)
    yt = torch.from_numpy(Y_train).to(device)
    R, n, d = xt.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lin = torch.nn.Linear(d, yt.shape[1])  # the initial weights of every readout
    W = lin.weight.detach().t().repeat(R, 1, 1).contiguous().to(device)  # (R, d, k)
    B = lin.bias.detach().repeat(R, 1).unsqueeze(1).contiguous().to(device)  # (R, 1, k)
    # the gradients are written out (no autograd graph): the loss is a sum of per-readout
    # means, so each readout's gradient is that of its own loss, as when trained alone
    # fused: one kernel per tensor per step (the unfused step was a third of the time on a CPU)
    opt = torch.optim.Adam([W, B], lr=lr, eps=0.1, fused=torch.device(device).type in ("cpu", "cuda"))
    n_batches = max(1, math.ceil(n / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * n_batches)
    g = torch.Generator().manual_seed(seed)
    losses = np.zeros((R, epochs))
    eps = 1e-8  # F.cosine_similarity's: norms below it are clamped
    if kind == "cosine":  # the targets' unit vectors, once (the cosine of each batch needs only these)
        y_unit = yt / yt.norm(dim=1, keepdim=True).clamp_min(eps)
    for e in range(epochs):
        order = torch.randperm(n, generator=g)
        tot = torch.zeros(R, dtype=torch.float64)
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size].to(device)
            xb = xt[:, idx]  # (R, batch, d)
            out = torch.baddbmm(B, xb, W)  # (R, batch, k)
            m = idx.numel()
            if kind == "cosine":
                # loss_r = mean_b (1 − cos_rb); d cos/d o = (ŷ − cos · o/‖o‖) / ‖o‖
                norm = out.norm(dim=2, keepdim=True).clamp_min_(eps)  # (R, batch, 1)
                u = out.div_(norm)  # o/‖o‖, in place: out is not needed again
                yb = y_unit[idx]  # the batch's target unit vectors, gathered once
                cos = torch.einsum("rbk,bk->rb", u, yb)
                per = 1 - cos.mean(1)
                grad = u.mul_(cos.unsqueeze(2)).sub_(yb).div_(norm).mul_(1.0 / m)
            else:
                # loss_r = mean_(b, k) BCE(σ(o), y); d/d o = (σ(o) − y) / (batch · k)
                target = yt[idx]
                per = F.binary_cross_entropy_with_logits(
                    out, target.unsqueeze(0).expand_as(out), reduction="none").mean((1, 2))
                grad = out.sigmoid_().sub_(target).mul_(1.0 / (m * out.shape[2]))
            W.grad = torch.bmm(xb.transpose(1, 2), grad)
            B.grad = grad.sum(1, keepdim=True)
            opt.step()
            sched.step()
            tot += per.double().cpu() * m
        losses[:, e] = (tot / n).numpy()
    with torch.no_grad():
        pred = torch.baddbmm(B, xv, W)
        if kind == "bce":
            pred = torch.sigmoid(pred)
        pred = pred.cpu().numpy()
    floor = float(np.mean(_cos_rows(np.broadcast_to(Y_train.mean(0), Y_test.shape), Y_test)))
    out = []
    for r in range(R):
        per = _cos_rows(pred[r], Y_test)
        out.append({"score": float(per.mean()), "floor": floor,
                    "map": mean_average_precision(pred[r], Y_test) if kind == "bce" else float("nan"),
                    "per_image": per, "predictions": pred[r], "loss": losses[r]})
    return out


@fill_doc
def transfer_table(features: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray], n_test: int,
                   *, seed: int = 0, epochs: int = 200, lr: float = 0.05, batch_size: int = 96,
                   progress: bool = False):
    """Transfer readouts of every feature set onto every target, the last rows held out.

    The last ``n_test`` rows of each array are held out (the paper: the last 2,000 NSD
    images). ``targets`` values are ``"cosine"`` targets unless they are binary (then
    ``"bce"``). Feature sets of one width are trained side by side
    (:func:`transfer_readouts`).

    Parameters
    ----------
    features : dict of str to array-like of shape (n_images, n_features)
        Frozen features, one set per name (same images, same order).
    targets : dict of str to array-like of shape (n_images, n_targets)
        Targets, one set per name (e.g. ``"mpnet"`` embeddings, ``"multihot"`` labels).
    n_test : int
        Held-out rows (the last ones).
    seed : int, default=0
        Keyword-only. Seeds the initial weights and the batch order.
    %(transfer_epochs)s
    %(transfer_lr)s
    %(transfer_batch_size)s
    %(progress)s
        One step per target and feature width (one batch of readouts).

    Returns
    -------
    table : pandas.DataFrame
        One row per target × feature set; columns ``features, target, kind, score, floor,
        map``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    n_test = check_int(n_test, "n_test", min_value=1)
    for fname, X in features.items():
        if np.ndim(X) != 2 or not 1 <= n_test < np.shape(X)[0]:
            raise ValueError(f"n_test={n_test}: features[{fname!r}] of shape {np.shape(X)} must be 2-D with "
                             "more rows than n_test (something to train on)")
    rows = []
    widths = {np.shape(X)[1] for X in features.values()}
    bar = tqdm(total=len(targets) * len(widths), desc="transfer readouts", disable=not progress)
    for tname, Y in targets.items():
        Y = np.asarray(Y, np.float32)
        kind = "bce" if np.isin(Y, (0.0, 1.0)).all() else "cosine"
        for fname, X in features.items():
            if X.shape[0] != Y.shape[0]:
                raise ValueError(f"{fname} has {X.shape[0]} rows but target {tname} has {Y.shape[0]}")
        by_width: dict[int, list[str]] = {}
        for fname, X in features.items():
            by_width.setdefault(np.shape(X)[1], []).append(fname)
        results = {}
        for names in by_width.values():  # feature sets of one width train side by side
            pairs = [(np.asarray(features[f])[:-n_test], np.asarray(features[f])[-n_test:]) for f in names]
            for fname, r in zip(names, transfer_readouts(pairs, Y[:-n_test], Y[-n_test:], kind, epochs=epochs,
                                                         lr=lr, batch_size=batch_size, seed=seed)):
                results[fname] = r
            bar.update(1)
        for fname in features:
            r = results[fname]
            rows.append({"features": fname, "target": tname, "kind": kind, "score": r["score"],
                         "floor": r["floor"], "map": r["map"]})
    bar.close()
    return pd.DataFrame(rows)
