"""The searchlight RSA engine: streams chunks of centres and never stores searchlight RDMs.

rsatoolbox stores all of them (60 GB for 1,000 NSD images over nsdgeneral). For Pearson
with correlation (or cosine) distance brain RDMs it does not build RDMs at all (trace form);
see the Notes of :func:`searchlight_rsa`. Neighbourhoods come from :mod:`._neighbourhoods`.
"""

from __future__ import annotations

import numpy as np

from .._utils.cache import VerifiedArray
from .._utils.device import resolve_device, tf32
from .._utils.docs import fill_doc
from .._utils.numeric import check_choice, check_finite, check_indices, check_int
from ._compare import canonical_method, rank, tau_a
from ._interop import _models_arg, _patterns_arg
from ._neighbourhoods import pad_neighbourhoods
from ._rdm import _dtype_name, compute_rdm, empty_rows, sub_rdm

__all__ = ["searchlight_rsa"]


def _parse_models(models, n_images: int):
    """→ ("rdm", (K, n_pairs) array) or ("features", list of (n_images, d) arrays)."""
    n_pairs = n_images * (n_images - 1) // 2
    if isinstance(models, (list, tuple)):
        arrs = [np.asarray(m) for m in models]
        if all(a.ndim == 1 for a in arrs):
            return "rdm", np.stack(arrs)
        if all(a.ndim == 2 for a in arrs):
            return "features", arrs
        raise ValueError("a list of models must hold all RDMs (1-D) or all features (2-D)")
    m = np.asarray(models)
    if m.ndim == 1:
        return "rdm", m[None]
    if m.ndim == 2:
        if m.shape[1] == n_pairs and m.shape[0] != n_images:
            return "rdm", m
        if m.shape[0] == n_images:
            return "features", [m]
        if m.shape[1] == n_pairs:
            return "rdm", m
    if m.ndim == 3 and m.shape[1] == n_images:
        return "features", list(m)
    raise ValueError(
        f"models of shape {m.shape} are neither condensed RDMs over {n_images} images "
        f"(…, {n_pairs}) nor feature matrices ({n_images}, d)"
    )


def _check_models(kind, mdl, sets, model_metric) -> None:
    """Refuse models that would make a sample set's r NaN (and so the subject's score)."""
    if kind == "rdm":
        bad = [k for k, m in enumerate(mdl) if not np.isfinite(m).all()]
        if bad:
            raise ValueError(f"model RDM(s) {bad} hold NaN/inf distances: every sample set containing such "
                             "a pair would score NaN. Build feature RDMs from "
                             "rsa.separate_empty_rows(X) (empty rows) or drop those images")
        return
    if model_metric not in ("correlation", "cosine"):
        return
    used = np.unique(sets)
    for k, m in enumerate(mdl):
        empty = empty_rows(np.asarray(m)[used], model_metric)
        if empty.any():
            raise ValueError(
                f"model {k}: {int(empty.sum())} of the {used.size} images in the sample sets have a "
                f"{'constant' if model_metric == 'correlation' else 'zero'} feature row (e.g. no COCO "
                f"category), whose {model_metric} distance is undefined: their sets would score NaN. "
                "Pass rsa.separate_empty_rows(X) (distance 1 to other images, 0 between empty ones) "
                "or leave those images out")


def _check_neighbourhoods(idx, counts, n_vox: int) -> None:
    """Neighbourhood indices padded with -1: in ``[0, n_vox)``, distinct, not all empty."""
    if idx.shape[0] == 0:
        raise ValueError("neighbourhoods holds no neighbourhood")
    if not counts.any():
        raise ValueError(f"neighbourhoods: all {idx.shape[0]} neighbourhoods are empty (no voxel to "
                         "analyse: check the mask and the radius)")
    width = idx.shape[1]
    slot = np.arange(width)[None, :]
    step = max(1, 2**22 // max(width, 1))  # in row blocks: no temporary of the size of idx
    for r0 in range(0, idx.shape[0], step):
        blk, cnt = idx[r0:r0 + step], counts[r0:r0 + step]
        valid = slot < cnt[:, None]
        if (blk[valid] < 0).any():
            raise ValueError("neighbourhoods holds a negative voxel index; expected 0 <= i < "
                             f"{n_vox} (the number of columns of data)")
        top = int(np.where(valid, blk, -1).max())
        if top >= n_vox:
            raise ValueError(f"neighbourhoods holds voxel index {top}, out of range for data with "
                             f"{n_vox} columns (expected 0 <= i < {n_vox})")
        # distinct within each neighbourhood: pads get distinct negative values before sorting
        s = np.sort(np.where(valid, blk, -1 - slot), axis=1)
        dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
        if dup.any():
            c = r0 + int(np.argwhere(dup)[0][0])
            raise ValueError(f"neighbourhoods[{c}] holds a voxel index more than once; expected "
                             "distinct indices (a repeated voxel would be weighted twice)")


def _std_rows(t, metric: str):
    if metric == "correlation":
        t = t - t.mean(dim=-1, keepdim=True)
    return t / t.norm(dim=-1, keepdim=True)


# --------------------------------------------------------------------------- engine
@fill_doc
def searchlight_rsa(
    data,
    neighbourhoods,
    models,
    method: str = "pearson",
    sets=None,
    device: str = "auto",
    *,
    brain_metric: str = "correlation",
    model_metric: str = "correlation",
    dtype: str = "float32",
    form: str = "auto",
    chunk_elements: int | None = None,
    return_per_set: bool = False,
    progress: bool = True,
    reorder: bool = False,
):
    """Searchlight RSA of model RDMs against brain RDMs in every neighbourhood.

    Parameters
    ----------
    data : array-like of shape (n_images, n_voxels), or rsatoolbox Dataset
        Brain patterns, columns indexed by ``neighbourhoods`` (may be a memmap; only one
        group of sample sets at a time is copied to the device).
    neighbourhoods : list of array-like of int, or ndarray of int of shape (n_centres, max_size)
        From :func:`volume_neighbourhoods` / :func:`surface_neighbourhoods` (a 2-D array
        is read as padded with negative values).
    models : array-like
        Condensed model RDMs over all ``n_images`` (``(n_pairs,)`` or
        ``(n_models, n_pairs)``), or model feature matrices (``(n_images, n_features)``, a
        list of them or ``(n_models, n_images, n_features)``) whose RDMs use
        ``model_metric``. An rsatoolbox ``RDMs`` (one model per RDM), ``Dataset`` (one
        feature model) or a list of them is accepted; with ``nsdId`` descriptors on both,
        they must match ``data``'s.
    %(method)s
        Pearson with correlation/cosine brain RDMs is the fast path.
    %(sets)s
    %(device)s
    %(brain_metric)s
    %(model_metric)s
    dtype : {"float32", "float64"}, default="float32"
        Precision of the GEMMs and of the gathered patterns; per-centre sums are combined
        in float64. TF32 is disabled. Non-Pearson methods always use float64.
    form : {"auto", "gram", "lowrank"}, default="auto"
        Pearson fast path: ``"gram"`` builds each sphere's n × n similarity matrix
        ``C = Z Zᵀ`` in a batched GEMM and reads every sum off it (cost n² v per centre,
        plus n² per model); ``"lowrank"`` (feature models with d < n only) avoids C
        (cost min(v² n, n² v) + d n v). ``"auto"`` takes the cheaper.
    chunk_elements : int, optional
        Size (elements) of the per-chunk working block (default 2**22 on CPU, about 1/24
        of free memory on CUDA); sets the number of centres per chunk.
    return_per_set : bool, default=False
        Return ``(n_models, n_sets, n_centres)`` instead of the mean over sets.
    %(progress_true)s
        One step per chunk of centres.
    %(reorder)s

    Returns
    -------
    scores : ndarray of float64 of shape (n_models, n_centres) or (n_models, n_sets, n_centres)
        NaN where a neighbourhood has fewer than 2 voxels or constant patterns, or holds a
        NaN/inf value of ``data`` (``data`` is not scanned up front: it may be a large memmap).

    Raises
    ------
    ValueError
        When a model RDM holds a non-finite distance, or a feature model holds NaN/inf or
        (correlation or cosine ``model_metric``) has a constant / zero row among the sets'
        images: those would make whole sets NaN. :func:`separate_empty_rows` gives such
        rows a defined distance. Also when a neighbourhood index is negative, ``>=
        n_voxels`` or repeated within its neighbourhood, when every neighbourhood is empty,
        or when a set index is out of range or repeated within its set.
    TypeError
        When neighbourhood or set indices are not integers.

    Notes
    -----
    With each image's pattern in the sphere standardised (``Z``, n × v: rows centred for
    the correlation distance, unit norm), the brain similarity matrix is ``C = Z Zᵀ`` and
    the brain RDM is ``1 − c``. Over the ``N = n(n−1)/2`` pairs,

    - ``Σ c_ij = (‖1ᵀZ‖² − n)/2``,
    - ``Σ c_ij² = (‖ZᵀZ‖²_F − n)/2 = (‖Z Zᵀ‖²_F − n)/2``,
    - for a fixed model RDM centred and scaled to unit norm over pairs (``M̃`` its square
      form, zero diagonal), ``Σ m̃_ij c_ij = ⟨Z, M̃ Z⟩/2 = ⟨M̃, C⟩/2``,
    - for a feature model with row-standardised ``U`` (model similarity ``G = U Uᵀ``,
      model RDM ``1 − g``), ``Σ g_ij c_ij = (‖UᵀZ‖²_F − n)/2`` (low-rank form),

    and Pearson r follows from these sums without extracting any RDM:
    ``r = (S_mc − S_m S_c / N) / √((S_cc − S_c²/N)(S_mm − S_m²/N))``. The Gram form
    obtains ``C`` for a whole chunk of centres in one batched GEMM and evaluates all
    models on it; every sum is taken on the diagonal-corrected C in float64. Other
    methods and the Euclidean brain metric extract the chunk's RDMs (ranked per chunk for
    Spearman; a CPU loop for tau-a) and are correspondingly slower.
    """
    import torch

    method = canonical_method(method)
    data, ids = _patterns_arg(data, "data")
    models = _models_arg(models, ids, reorder)
    # a memory map (or a lazily verified cache entry) is read one group of sample sets at a time
    X = data if isinstance(data, (np.memmap, VerifiedArray)) else np.asarray(data)
    if X.ndim != 2:
        raise ValueError(f"data must be (n_images, n_voxels), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"data must be numeric patterns, got dtype {X.dtype}")
    check_choice(brain_metric, "brain_metric", ("correlation", "cosine", "euclidean"))
    check_choice(model_metric, "model_metric", ("correlation", "cosine", "euclidean"))
    check_choice(_dtype_name(dtype), "dtype", ("float32", "float64"))
    check_choice(form, "form", ("auto", "gram", "lowrank"))
    check_int(chunk_elements, "chunk_elements", min_value=1, allow_none=True)
    n_images, n_vox = X.shape
    kind, mdl = _parse_models(models, n_images)
    n_models = len(mdl)
    if n_models == 0:
        raise ValueError("models holds no model")
    if kind == "features":
        mdl = [check_finite(m, f"models[{k}]", dtype=None) for k, m in enumerate(mdl)]
    if sets is None:
        sets = np.arange(n_images)[None]
    else:
        sets = check_indices(sets, "sets", n_images, ndim=2)
        if sets.shape[0] == 0:
            raise ValueError("sets holds no sample set (shape (0, set_size))")
    n_sets, n = sets.shape
    if n < 3:
        raise ValueError(f"sets: need at least 3 images per set, got {n}")
    N = n * (n - 1) // 2
    _check_models(kind, mdl, sets, model_metric)
    idx_np, counts_np = pad_neighbourhoods(neighbourhoods, fill=-1)
    _check_neighbourhoods(idx_np, counts_np, n_vox)
    idx_np[idx_np < 0] = n_vox  # the padding slot: an all-zero voxel
    n_centres, vmax = idx_np.shape
    vmax = max(vmax, 1)
    dev = resolve_device(device)
    f64 = torch.float64
    tdt = {"float32": torch.float32, "float64": f64}[np.dtype(dtype).name]

    trace = method == "pearson" and brain_metric in ("correlation", "cosine")
    if not trace:  # materialised RDMs (ranks, Euclidean): float64 throughout
        tdt = f64
    can_lowrank = (
        trace
        and kind == "features"
        and model_metric in ("correlation", "cosine")
        and all(m.shape[1] < n for m in mdl)
    )
    if form == "lowrank" and not can_lowrank:
        raise ValueError("form='lowrank' needs Pearson, feature models with d < n, "
                         "correlation/cosine metrics")
    if form == "auto" and can_lowrank:
        d_sum = sum(m.shape[1] for m in mdl)
        cost_gram = n * n * vmax + n_models * n * n
        cost_low = min(vmax * vmax * n, n * n * vmax) + d_sum * n * vmax
        form = "lowrank" if cost_low < cost_gram else "gram"
    lowrank = form == "lowrank"

    if chunk_elements is None:
        if dev.startswith("cuda"):
            free, _ = torch.cuda.mem_get_info(torch.device(dev))
            chunk_elements = int(free // (24 * (torch.finfo(tdt).bits // 8)))
        else:
            chunk_elements = 2**22
    if lowrank:
        d_max = max(m.shape[1] for m in mdl)
        per_item = n * vmax + vmax * max(min(vmax, n), d_max)
    else:
        per_item = n * vmax + n * n * (1 if trace else 3)
    b_target = min(n_centres, 64)
    sg = int(min(n_sets, max(1, chunk_elements // (per_item * max(b_target, 1)))))
    # the group's data block (sg, n_vox, n) has to fit as well
    sg = int(max(1, min(sg, (8 * chunk_elements) // max(n * (n_vox + 1), 1))))
    B = int(max(1, min(n_centres, chunk_elements // (per_item * sg))))

    out = np.zeros((n_models, n_sets if return_per_set else 1, n_centres), dtype=np.float64)
    groups = [(g0, min(g0 + sg, n_sets)) for g0 in range(0, n_sets, sg)]
    chunks = [(c0, min(c0 + B, n_centres)) for c0 in range(0, n_centres, B)]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(groups) * len(chunks), disable=not progress, desc="searchlight")
    iu = torch.triu_indices(n, n, 1, device=dev)
    with tf32(False), torch.inference_mode():
        for g0, g1 in groups:
            S = g1 - g0
            gsets = sets[g0:g1]
            # voxel-major block (S, n_vox + 1, n): gathering a sphere reads whole rows;
            # the extra all-zero voxel is the padding target
            Xg = torch.zeros((S, n_vox + 1, n), dtype=tdt, device=dev)
            blk = np.asarray(X[gsets.ravel()]).reshape(S, n, n_vox)
            Xg[:, :n_vox, :] = torch.as_tensor(blk).to(device=dev, dtype=tdt).transpose(1, 2)
            del blk
            mstate = _prepare_models(kind, mdl, gsets, n, dev, tdt, trace, lowrank,
                                     model_metric, method)
            for c0, c1 in chunks:
                vm = max(int(counts_np[c0:c1].max()), 1)
                idx = torch.as_tensor(idx_np[c0:c1, :vm], device=dev)
                cnt = torch.as_tensor(counts_np[c0:c1], device=dev)
                b = c1 - c0
                W = Xg.index_select(1, idx.reshape(-1)).view(S, b, vm, n)
                if brain_metric == "correlation":
                    mu = W.sum(2, keepdim=True) / cnt.view(1, b, 1, 1).clamp(min=1).to(tdt)
                    W.sub_(mu)
                    if vm > 1:
                        valid = torch.arange(vm, device=dev)[None, :] < cnt[:, None]
                        W.mul_(valid.view(1, b, vm, 1).to(tdt))
                if trace:
                    res = _trace_chunk(W, mstate, lowrank, n, N)
                else:
                    res = _materialised_chunk(W, mstate, brain_metric, method, iu)
                res = res.to(f64).cpu().numpy()  # (K, S, b)
                bad = counts_np[c0:c1] < 2
                res[:, :, bad] = np.nan
                if return_per_set:
                    out[:, g0:g1, c0:c1] = res
                else:
                    out[:, 0, c0:c1] += res.sum(1)
                bar.update(1)
            del Xg, mstate
    bar.close()
    return out if return_per_set else out[:, 0] / n_sets


def _prepare_models(kind, mdl, gsets, n, dev, tdt, trace, lowrank, model_metric, method):
    """Per group of sets: model tensors ready for the chunk kernels."""
    import torch

    S = gsets.shape[0]
    if lowrank:
        out = []
        for U in mdl:
            u = torch.as_tensor(np.asarray(U)[gsets.ravel()], device=dev).to(torch.float64)
            u = _std_rows(u.view(S, n, -1), model_metric)
            # model similarity sums over pairs: Σ g_ij and Σ g_ij² (float64)
            s1 = (u.sum(1).pow(2).sum(-1) - n) / 2
            s2 = (torch.matmul(u.transpose(1, 2), u).pow(2).sum((-1, -2)) - n) / 2
            out.append((u.to(tdt), s1, s2))
        return ("lowrank", out)
    # condensed model RDMs for these sets, (K, S, N)
    if kind == "rdm":
        rd = sub_rdm(np.stack(mdl), gsets)
    else:
        rd = np.stack([compute_rdm(np.asarray(U)[gsets], metric=model_metric, dtype="float64",
                                   out_dtype="float64", device=dev) for U in mdl])
    rd = rd.astype(np.float64)
    if trace:
        m = rd - rd.mean(-1, keepdims=True)
        m = m / np.linalg.norm(m, axis=-1, keepdims=True)
        mt = torch.as_tensor(m, device=dev)
        iu = torch.triu_indices(n, n, 1, device=dev)
        M = torch.zeros(mt.shape[:2] + (n, n), dtype=torch.float64, device=dev)
        M[..., iu[0], iu[1]] = mt
        M[..., iu[1], iu[0]] = mt
        # (S, n*n, K + 1): one GEMM evaluates every model (and the all-ones matrix, for
        # Σ c_ij) on a chunk's C matrices
        Mf = torch.cat([M.reshape(M.shape[0], S, n * n),
                        torch.ones((1, S, n * n), dtype=torch.float64, device=dev)])
        return ("dense", Mf.permute(1, 2, 0).contiguous().to(tdt))
    if method == "spearman":
        rd = rank(rd)
    if method in ("pearson", "spearman"):
        rd = rd - rd.mean(-1, keepdims=True)
    if method != "kendall_tau_a":
        rd = rd / np.linalg.norm(rd, axis=-1, keepdims=True)
        return ("vectors", torch.as_tensor(rd, device=dev))
    return ("raw", rd)


def _trace_chunk(W, mstate, lowrank, n, N):
    """Pearson r for a chunk by the trace identities. W: (S, b, v, n) centred → (K, S, b)."""
    import torch

    S, b, v, _ = W.shape
    f64 = torch.float64
    kind, M = mstate
    if not lowrank:
        # C = Z Zᵀ (S, b, n, n); normalise the cheaper side (patterns if v < n, else C)
        if v < n:
            W.mul_(W.pow(2).sum(2, keepdim=True).rsqrt())
            C = torch.matmul(W.transpose(-1, -2), W)
        else:
            C = torch.matmul(W.transpose(-1, -2), W)
            inv = torch.diagonal(C, dim1=-2, dim2=-1).rsqrt()
            C.mul_(inv.unsqueeze(-1)).mul_(inv.unsqueeze(-2))
        dg = torch.diagonal(C, dim1=-2, dim2=-1).to(f64)  # 1 up to rounding
        Cf = C.view(S, b, n * n)
        K = M.shape[-1] - 1
        prod = torch.matmul(Cf, M).to(f64)  # (S, b, K + 1): ⟨M̃_k, C⟩ and ⟨11ᵀ, C⟩
        sc = (prod[..., K] - dg.sum(-1)) / 2
        scc = (torch.linalg.vector_norm(Cf, dim=-1).to(f64) ** 2 - (dg * dg).sum(-1)) / 2
        smc = prod[..., :K] / 2  # M̃ has a zero diagonal
        var_c = scc - sc * sc / N
        r = -smc / torch.sqrt(var_c).unsqueeze(-1)  # r(1 - c, m) = -r(c, m̃)
        return r.permute(2, 0, 1)
    W.mul_(torch.linalg.vector_norm(W, dim=2, keepdim=True).reciprocal_())  # rows of Z
    sc = (torch.linalg.vector_norm(W.sum(3), dim=-1).to(f64) ** 2 - n) / 2
    if v <= n:
        G = torch.matmul(W, W.transpose(-1, -2))  # Zᵀ Z, (S, b, v, v)
    else:
        G = torch.matmul(W.transpose(-1, -2), W)  # Z Zᵀ, (S, b, n, n)
    scc = (torch.linalg.vector_norm(G, dim=(-1, -2)).to(f64) ** 2 - n) / 2
    var_c = scc - sc * sc / N
    Wf = W.reshape(S, b * v, n)
    outs = []
    for u, s1, s2 in M:
        P = torch.matmul(Wf, u)  # (Zᵀ U) per centre, (S, b v, d)
        sgc = (torch.linalg.vector_norm(P.view(S, b, -1), dim=-1).to(f64) ** 2 - n) / 2
        num = sgc - s1[:, None] * sc / N
        den = torch.sqrt(var_c * (s2 - s1 * s1 / N)[:, None])
        outs.append(num / den)  # r(1 - c, 1 - g) = r(c, g)
    return torch.stack(outs)


def _materialised_chunk(W, mstate, brain_metric, method, iu):
    """Build the chunk's brain RDMs and compare. W: (S, b, v, n) → (K, S, b)."""
    import torch

    S, b, v, n = W.shape
    G = torch.matmul(W.transpose(-1, -2), W)  # (S, b, n, n), float64
    sq = torch.diagonal(G, dim1=-2, dim2=-1)
    if brain_metric in ("correlation", "cosine"):
        inv = sq.rsqrt()
        d = 1.0 - G[..., iu[0], iu[1]] * inv[..., iu[0]] * inv[..., iu[1]]
    else:
        d = torch.sqrt(torch.clamp(sq[..., iu[0]] + sq[..., iu[1]] - 2 * G[..., iu[0], iu[1]], min=0))
    kind, M = mstate
    if kind == "raw":  # tau-a: CPU loop
        dn = d.cpu().numpy()
        out = np.empty((M.shape[0], S, b))
        for k in range(M.shape[0]):
            for s in range(S):
                for j in range(b):
                    out[k, s, j] = tau_a(dn[s, j], M[k, s])
        return torch.as_tensor(out)
    if method == "spearman":
        d = torch.argsort(torch.argsort(d, dim=-1), dim=-1).to(torch.float64)
    if method in ("pearson", "spearman"):
        d = d - d.mean(-1, keepdim=True)
    d = d / d.norm(dim=-1, keepdim=True)
    return torch.einsum("sbp,ksp->ksb", d, M)


