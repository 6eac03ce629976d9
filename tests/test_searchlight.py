"""brainllm_utils.searchlight: neighbourhoods (brute force, rsatoolbox), engine (naive, rsatoolbox)."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brainllm_utils import rsa
from brainllm_utils import searchlight as sl


def _blob_mask(rng, shape=(9, 10, 8), p=0.75):
    """A ragged random mask (holes and borders exercise truncation and the 50 % rule)."""
    m = rng.random(shape) < p
    m[0], m[:, -1] = False, False
    return m


def _naive(Y, neighbourhoods, model_rdms, method="pearson", metric="correlation"):
    return np.array([
        [rsa.compare_rdms(pdist(Y[:, nb], metric), m, method) for nb in neighbourhoods]
        for m in np.atleast_2d(model_rdms)
    ])


# --------------------------------------------------------------------------- neighbourhoods
@pytest.mark.parametrize("radius,size", [(2, 27), (3, 93), (4, 251), (5, 485)])
def test_sphere_sizes_unbounded(radius, size):
    assert len(sl.sphere_offsets(radius)) == size
    mask = np.ones((2 * radius + 3,) * 3, dtype=bool)
    centres, nbs = sl.volume_neighbourhoods(mask, radius, threshold=1.0)
    mid = np.ravel_multi_index((radius + 1,) * 3, mask.shape)
    k = np.flatnonzero(centres == mid)
    assert k.size == 1 and len(nbs[k[0]]) == size


@pytest.mark.parametrize("radius", [2, 2.5, 3])
def test_volume_neighbourhoods_brute_force(rng, radius):
    mask = _blob_mask(rng)
    centres, nbs = sl.volume_neighbourhoods(mask, radius)
    coords = np.argwhere(mask)
    D = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    # full sphere size, counting voxels outside the array as outside the mask
    g = np.arange(-int(np.ceil(radius)), int(np.ceil(radius)) + 1)
    full = ((g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2)
            < radius**2).sum()
    in_sphere = D < radius
    expected_centres = np.flatnonzero(in_sphere.sum(1) >= 0.5 * full)
    np.testing.assert_array_equal(centres, expected_centres)
    for c, nb in zip(centres, nbs):
        np.testing.assert_array_equal(nb, np.flatnonzero(in_sphere[c]))


def test_volume_neighbourhoods_vs_rsatoolbox(rng):
    from rsatoolbox.util.searchlight import get_volume_searchlight

    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[2:8, 2:8, 2:8] = _blob_mask(rng, (6, 6, 6), 0.8)
    centres, nbs = sl.volume_neighbourhoods(mask, 3, threshold=0.5)
    # rsatoolbox: centres from the untruncated sphere, members from the truncated one
    c_full, _ = get_volume_searchlight(mask, radius=3, threshold=0.5)
    c_tr, n_tr = get_volume_searchlight(mask, radius=3, threshold=0.0,
                                        truncate_at_boundary=True)
    vox = np.flatnonzero(mask)  # linear index of each mask voxel
    np.testing.assert_array_equal(vox[centres], c_full)
    lookup = dict(zip(c_tr.tolist(), n_tr))
    for c, nb in zip(centres, nbs):
        np.testing.assert_array_equal(vox[nb], np.sort(lookup[vox[c]]))


def _plane_mesh(nx=9, ny=7, spacing=2.0):
    xx, yy = np.meshgrid(np.arange(nx) * spacing, np.arange(ny) * spacing, indexing="ij")
    coords = np.c_[xx.ravel(), yy.ravel(), np.zeros(nx * ny)]
    vid = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = vid[:-1, :-1], vid[1:, :-1], vid[:-1, 1:], vid[1:, 1:]
    faces = np.r_[np.c_[a.ravel(), b.ravel(), d.ravel()], np.c_[a.ravel(), d.ravel(), c.ravel()]]
    return coords, faces


def _dijkstra_ref(coords, faces, src):
    adj = {i: {} for i in range(len(coords))}
    for f in faces:
        for i, j in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            w = float(np.linalg.norm(coords[i] - coords[j]))
            adj[i][j] = adj[j][i] = w
    dist = np.full(len(coords), np.inf)
    dist[src] = 0.0
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, w in adj[u].items():
            if d + w < dist[v]:
                dist[v] = d + w
                heapq.heappush(heap, (d + w, v))
    return dist


def test_surface_neighbourhoods_geodesic():
    coords, faces = _plane_mesh()
    centres, nbs = sl.surface_neighbourhoods((coords, faces), 5.0)
    np.testing.assert_array_equal(centres, np.arange(len(coords)))
    for c in [0, 17, 31]:
        ref = np.flatnonzero(_dijkstra_ref(coords, faces, c) < 5.0)
        np.testing.assert_array_equal(nbs[c], ref)
    # the disc follows the mesh: folding the plane must not change graph distances
    folded = coords.copy()
    folded[:, 2] = np.where(folded[:, 0] > 8, (folded[:, 0] - 8), 0.0)
    folded[:, 0] = np.minimum(folded[:, 0], 8)
    _, nb_f = sl.surface_neighbourhoods((folded, faces), 5.0)
    ref = np.flatnonzero(_dijkstra_ref(folded, faces, 31) < 5.0)
    np.testing.assert_array_equal(nb_f[31], ref)
    # mask: indices into the mask's vertices; centres need ≥ 50 % of the disc inside
    mask = coords[:, 0] < 9
    c_m, nb_m = sl.surface_neighbourhoods((coords, faces), 5.0, mask=mask, threshold=0.8)
    vid = np.flatnonzero(mask)
    expected = []
    for k, v in enumerate(vid):
        disc = _dijkstra_ref(coords, faces, v) < 5.0
        if mask[disc].sum() >= 0.8 * disc.sum():
            expected.append(k)
            np.testing.assert_array_equal(nb_m[len(expected) - 1],
                                          np.flatnonzero(disc[mask]))
    np.testing.assert_array_equal(c_m, expected)
    assert 0 < len(c_m) < mask.sum()


def test_surface_neighbourhoods_fsaverage5():
    from nilearn.datasets import load_fsaverage

    mesh = load_fsaverage("fsaverage5")["pial"].parts["left"]
    centres, nbs = sl.surface_neighbourhoods(mesh, 6.0)
    sizes = np.array([len(n) for n in nbs])
    assert len(centres) == 10242
    assert 3 <= np.median(sizes) <= 40  # ~3.6 mm vertex spacing
    assert all(c in nb for c, nb in zip(centres[:50], nbs[:50]))


def test_pad_neighbourhoods_roundtrip():
    nbs = [np.array([3, 5]), np.array([1]), np.array([0, 2, 4])]
    idx, counts = sl.pad_neighbourhoods(nbs)
    np.testing.assert_array_equal(counts, [2, 1, 3])
    np.testing.assert_array_equal(idx, [[3, 5, -1], [1, -1, -1], [0, 2, 4]])
    idx2, c2 = sl.pad_neighbourhoods(np.array([[3, -1, 5], [1, -1, -1], [0, 2, 4]]))
    np.testing.assert_array_equal(idx2, idx)


# --------------------------------------------------------------------------- engine
@pytest.fixture
def small_problem(rng):
    mask = _blob_mask(rng, (7, 7, 6), 0.8)
    centres, nbs = sl.volume_neighbourhoods(mask, 2.5)
    n = 36
    Y = rng.normal(size=(n, mask.sum())).astype(np.float32)
    Y += 0.5 * rng.normal(size=(n, 1))  # image-wise offsets: correlation ≠ cosine
    U = rng.normal(size=(n, 6))
    V = rng.normal(size=(n, 50))
    models = np.stack([pdist(U, "correlation"), pdist(V, "euclidean")])
    return mask, centres, nbs, Y, U, V, models


def test_searchlight_pearson_matches_naive(small_problem):
    mask, centres, nbs, Y, U, V, models = small_problem
    ref = _naive(Y, nbs, models)
    got = sl.searchlight_rsa(Y, nbs, models, progress=False)
    assert got.shape == (2, len(nbs))
    np.testing.assert_allclose(got, ref, atol=1e-5)
    got64 = sl.searchlight_rsa(Y, nbs, models, dtype="float64", progress=False)
    np.testing.assert_allclose(got64, ref, atol=1e-10)
    # feature models: low-rank and Gram forms agree with materialised RDMs
    ref_f = _naive(Y, nbs, np.stack([pdist(U, "correlation"), pdist(V, "correlation")]))
    for form in ["auto", "gram"]:
        got_f = sl.searchlight_rsa(Y, nbs, [U, V], form=form, dtype="float64", progress=False)
        np.testing.assert_allclose(got_f, ref_f, atol=1e-10)
    got_lr = sl.searchlight_rsa(Y, nbs, U, form="lowrank", dtype="float64", progress=False)
    np.testing.assert_allclose(got_lr[0], ref_f[0], atol=1e-10)
    with pytest.raises(ValueError):
        sl.searchlight_rsa(Y, nbs, V, form="lowrank", progress=False)  # d > n


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a", "cosine"])
def test_searchlight_other_methods_match_naive(small_problem, method):
    mask, centres, nbs, Y, U, V, models = small_problem
    nbs = nbs[:25]
    ref = _naive(Y, nbs, models, method)
    got = sl.searchlight_rsa(Y, nbs, models, method=method, progress=False)
    np.testing.assert_allclose(got, ref, atol=1e-10)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_searchlight_brain_metrics(small_problem, metric):
    mask, centres, nbs, Y, U, V, models = small_problem
    ref = _naive(Y, nbs, models, metric=metric)
    got = sl.searchlight_rsa(Y, nbs, models, brain_metric=metric, progress=False)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_searchlight_sets_chunks_and_padded_input(small_problem):
    mask, centres, nbs, Y, U, V, models = small_problem
    sets = rsa.make_sample_sets(len(Y), set_size=12, seed=0)
    ref = np.stack([_naive(Y[s], nbs, rsa.sub_rdm(models, s)) for s in sets], axis=1)
    got = sl.searchlight_rsa(Y, nbs, models, sets=sets, return_per_set=True, progress=False)
    assert got.shape == (2, 3, len(nbs))
    np.testing.assert_allclose(got, ref, atol=1e-5)
    idx, _ = sl.pad_neighbourhoods(nbs)
    mean = sl.searchlight_rsa(Y, idx, models, sets=sets, chunk_elements=500, progress=False)
    np.testing.assert_allclose(mean, ref.mean(1), atol=1e-5)
    # feature models per set (low-rank, d < set size)
    ref_u = np.stack([_naive(Y[s], nbs, pdist(U[s], "correlation")) for s in sets], 1)
    got_u = sl.searchlight_rsa(Y, nbs, U, sets=sets, return_per_set=True, progress=False)
    np.testing.assert_allclose(got_u, ref_u, atol=1e-5)


def test_searchlight_degenerate_neighbourhood(rng):
    Y = rng.normal(size=(10, 5))
    got = sl.searchlight_rsa(Y, [np.array([0]), np.array([1, 2, 3])],
                             pdist(rng.normal(size=(10, 2))), progress=False)
    assert np.isnan(got[0, 0]) and np.isfinite(got[0, 1])


def test_searchlight_matches_rsatoolbox(rng):
    """Same spheres (truncated), same data: |Δr| ≤ 1e-5 against rsatoolbox's pipeline."""
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.searchlight import (
        evaluate_models_searchlight,
        get_searchlight_RDMs,
        get_volume_searchlight,
    )

    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[2:8, 2:8, 2:8] = _blob_mask(rng, (6, 6, 6), 0.85)
    n = 30
    vol = rng.normal(size=(n,) + mask.shape).astype(np.float32)
    data_2d = vol.reshape(n, -1)
    c_full, _ = get_volume_searchlight(mask, radius=2, threshold=0.5)
    c_tr, n_tr = get_volume_searchlight(mask, radius=2, threshold=0.0, truncate_at_boundary=True)
    keep = np.isin(c_tr, c_full)
    sl_rdms = get_searchlight_RDMs(data_2d, c_tr[keep], [n_tr[i] for i in np.flatnonzero(keep)],
                                   np.arange(n), method="correlation", verbose=False)
    model_rdm = pdist(rng.normal(size=(n, 4)), "correlation")
    model = ModelFixed("m", RDMs(model_rdm[None]))
    ev = evaluate_models_searchlight(sl_rdms, model, eval_fixed, method="corr")
    ref = np.array([e.evaluations.ravel()[0] for e in ev])

    centres, nbs = sl.volume_neighbourhoods(mask, 2, threshold=0.5)
    got = sl.searchlight_rsa(data_2d[:, mask.ravel()], nbs, model_rdm, progress=False)[0]
    np.testing.assert_array_equal(np.flatnonzero(mask)[centres], c_tr[keep])
    assert np.max(np.abs(got - ref)) <= 1e-5


# --------------------------------------------------------------------------- mapping back
def test_to_volume_and_surface(rng):
    mask = _blob_mask(rng)
    centres, _ = sl.volume_neighbourhoods(mask, 2)
    vals = rng.normal(size=len(centres))
    vol = sl.to_volume(vals, mask, centres)
    assert vol.shape == mask.shape
    np.testing.assert_allclose(vol[mask][centres], vals, rtol=1e-6)
    assert np.isnan(vol).sum() == vol.size - len(centres)
    img = sl.to_volume(np.stack([vals, -vals]), mask, centres, affine=np.diag([1.8] * 3 + [1]))
    assert img.shape == mask.shape + (2,) and img.affine[0, 0] == pytest.approx(1.8)
    np.testing.assert_allclose(np.asarray(img.dataobj)[..., 1][mask][centres], -vals, rtol=1e-6)
    surf = sl.to_surface(vals[:5], 20, np.array([0, 3, 7, 8, 19]))
    assert surf.shape == (20,) and np.isnan(surf[1]) and surf[19] == pytest.approx(vals[4])
    smask = np.zeros(20, bool)
    smask[10:] = True
    s2 = sl.to_surface(vals[:2], 20, np.array([0, 9]), mask=smask)
    assert s2[10] == pytest.approx(vals[0]) and s2[19] == pytest.approx(vals[1])
