"""The func1pt8 → fsaverage projection (``nsd.project_to_fsaverage``) and the sandbox's transforms.

Outside references: hand-computed cases (B-spline interpolation reproduces samples at voxel
centres and linear functions away from the faces; a known index map), and nsdcode's own
``NSDmapdata.fit`` where the package is importable (it pins scikit-learn 0.23.2 and
nibabel 3.1.0, so it is not a test dependency; install it with
``pip install --no-deps --target DIR nsdcode`` and put DIR on PYTHONPATH to run that test).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brainllm_utils.nsd import (
    NSD,
    NSDFileError,
    load_fsaverage_transforms,
    project_to_fsaverage,
    transform_files,
    volume_to_surface,
)


@pytest.fixture(scope="module")
def nsd(tiny_root):
    return NSD(tiny_root)


# --------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("interp", ["cubic", "linear", "nearest"])
def test_samples_at_voxel_centres_are_reproduced(interp):
    vol = np.random.default_rng(0).normal(size=(7, 8, 9))
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in vol.shape], indexing="ij"), -1).reshape(-1, 3)
    out = volume_to_surface(vol, ijk + 1.0, interp)  # 1-based coordinates
    np.testing.assert_allclose(out, vol.reshape(-1), atol=1e-9)


def test_cubic_is_exact_for_a_linear_volume_away_from_the_faces():
    n = 32
    i, j, k = np.meshgrid(*[np.arange(n, dtype=float)] * 3, indexing="ij")
    vol = 0.5 + 0.3 * i - 0.2 * j + 0.1 * k
    pts = np.random.default_rng(1).uniform(12, 19, size=(200, 3))  # 0-based, ≥ 12 voxels in
    out = volume_to_surface(vol, pts + 1.0, "cubic")
    np.testing.assert_allclose(out, 0.5 + pts @ [0.3, -0.2, 0.1], atol=1e-6)
    # the coordinates are 1-based: the same points read 0-based are one voxel off
    shifted = volume_to_surface(vol, pts, "cubic")
    np.testing.assert_allclose(out - shifted, 0.3 - 0.2 + 0.1, atol=1e-6)


def test_missing_and_outside_points_get_badval_and_nan_voxels_count_as_zero():
    vol = np.ones((5, 5, 5))
    pts = np.array([[3, 3, 3], [9999, 9999, 9999], [np.nan, 2, 2], [0.5, 3, 3], [3, 5.5, 3], [1, 1, 1]])
    out = volume_to_surface(vol, pts, "linear", badval=-7.0)
    np.testing.assert_array_equal(out, [1, -7, -7, -7, -7, 1])
    vol[2, 2, 2] = np.nan  # 1-based (3, 3, 3)
    assert volume_to_surface(vol, pts[:1], "nearest")[0] == 0.0


def test_nsdcode_window_is_one_voxel_shifted():
    vol = np.ones((6, 6, 6))
    low, high = np.array([[1.5, 3, 3]]), np.array([[6.5, 3, 3]])  # 1-based
    assert volume_to_surface(vol, low, bounds="nsd")[0] == pytest.approx(1.0)
    assert np.isnan(volume_to_surface(vol, low, bounds="nsdcode")[0])
    assert np.isnan(volume_to_surface(vol, high, bounds="nsd")[0])
    assert volume_to_surface(vol, high, bounds="nsdcode")[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bounds"):
        volume_to_surface(vol, low, bounds="matlab")
    with pytest.raises(ValueError, match="interp"):
        volume_to_surface(vol, low, interp="quintic")


# --------------------------------------------------------------------------- a hand-computed projection
def test_projection_of_a_hand_built_transform(nsd):
    s = nsd.subjects[0]
    grid = nsd.brainmask(s).shape
    rng = np.random.default_rng(2)
    vol = rng.normal(size=grid)
    n_lh, n_rh = nsd.n_vertices()
    transforms, expected = {}, []
    for h, nv in (("lh", n_lh), ("rh", n_rh)):
        n_native = 50
        vox = np.stack([rng.integers(0, g, size=(3, n_native)) for g in grid], -1)  # (depth, vertex, xyz)
        index = rng.integers(0, n_native, size=nv)
        transforms[h] = (vox + 1.0, index)
        native = vol[vox[..., 0], vox[..., 1], vox[..., 2]].mean(0)  # mean of the 3 depths
        expected.append(native[index])
    out = project_to_fsaverage(vol, s, nsd, transforms=transforms)
    np.testing.assert_allclose(out, np.concatenate(expected), atol=1e-9)
    # linear: the projection of a mean is the mean of projections
    vol2 = rng.normal(size=grid)
    both = project_to_fsaverage((vol + vol2) / 2, s, nsd, transforms=transforms)
    np.testing.assert_allclose(both, (out + project_to_fsaverage(vol2, s, nsd, transforms=transforms)) / 2,
                               atol=1e-9)
    with pytest.raises(ValueError, match="func1pt8 grid"):
        project_to_fsaverage(vol[:-1], s, nsd, transforms=transforms)


# --------------------------------------------------------------------------- the sandbox's files
def test_sandbox_transforms_exist_for_every_subject_and_read_back(nsd):
    n_lh, n_rh = nsd.n_vertices()
    for s in nsd.subjects:
        tr = load_fsaverage_transforms(nsd, s)
        for h, nv in (("lh", n_lh), ("rh", n_rh)):
            coords, index = tr[h]
            assert coords.shape[0] == 3 and coords.shape[2] == 3
            assert index.shape == (nv,) and index.min() >= 0 and index.max() < coords.shape[1]
            assert coords.shape[1] < nv  # the native surface is not fsaverage itself
            p = nsd.root / transform_files(s)[h]["layerB1"]
            assert nib.load(p).shape == (coords.shape[1], 1, 1, 3)


def test_sandbox_projection_agrees_with_the_planted_surface_truth(nsd, tiny_root):
    """The planted volume SNR projected to fsaverage tracks the planted fsaverage SNR: the
    transforms put each vertex where the generator put its cortex."""
    for s in nsd.subjects:
        vol = np.load(tiny_root / f"sandbox_truth/snr_func1pt8mm_{s}.npy")
        surf = np.load(tiny_root / f"sandbox_truth/snr_fsaverage_{s}.npy")
        proj = project_to_fsaverage(vol, s, nsd)
        assert np.isfinite(proj).all()
        assert np.corrcoef(proj, surf)[0, 1] > 0.5
        # a wrong projection (the volume read front to back) does not
        flipped = project_to_fsaverage(np.flip(vol, 1), s, nsd)
        assert np.corrcoef(flipped, surf)[0, 1] < 0.2


# --------------------------------------------------------------------------- file checks
def _rewrite(path, data):
    path.unlink()
    nib.save(nib.MGHImage(data, np.eye(4)), path)


@pytest.mark.parametrize("damage, match", [
    ("columns", "expected \\(n_vertices, 1, 1, 3\\)"),
    ("depth_count", "three depths share"),
    ("other_grid", "outside subj01's func1pt8 grid"),
    ("fs_count", "one native vertex per fsaverage vertex"),
    ("index_range", "1-based vertex indices"),
    ("missing", "missing NSD transform file"),
])
def test_damaged_transform_files_are_named(tree_copy, damage, match):
    root = tree_copy()
    files = transform_files(1)["lh"]
    p1, p2, pf = (root / files[k] for k in ("layerB1", "layerB2", "fsaverage"))
    a = np.asarray(nib.load(p1).get_fdata(dtype=np.float32))
    idx = np.asarray(nib.load(pf).dataobj)
    if damage == "columns":
        _rewrite(p1, a[..., :2])
    elif damage == "depth_count":
        _rewrite(p2, a[:-1])
    elif damage == "other_grid":
        _rewrite(p1, (a * 3).astype(np.float32))
    elif damage == "fs_count":
        _rewrite(pf, idx[:-1])
    elif damage == "index_range":
        bad = idx.copy()
        bad[0] = a.shape[0] + 1
        _rewrite(pf, bad)
    else:
        pf.unlink()
    target = pf if damage in ("fs_count", "index_range", "missing") else (p2 if damage == "depth_count" else p1)
    with pytest.raises(NSDFileError, match=match) as err:
        load_fsaverage_transforms(NSD(root), 1)
    assert target.name in str(err.value)


# --------------------------------------------------------------------------- nsdcode itself
def test_equals_nsdcode_nsdmapdata_fit(nsd, tiny_root, monkeypatch):
    """nsdcode's ``NSDmapdata.fit`` (func1pt8 → lh/rh.layerB1..3, mean, white → fsaverage) on
    the sandbox's transform files gives exactly our projection with its window and badval."""
    pytest.importorskip("nsdcode")
    from nsdcode.nsd_mapdata import NSDmapdata

    monkeypatch.setattr(np, "int", int, raising=False)  # nsdcode's case 3 uses np.int (numpy < 1.24)
    rng = np.random.default_rng(3)
    mapper = NSDmapdata(str(tiny_root))
    for s in nsd.subjects:
        k = int(s[4:])
        vol = rng.normal(size=nsd.brainmask(s).shape)
        vol[0, 0, 0] = np.nan
        ref = []
        for h in ("lh", "rh"):
            depth = np.mean([mapper.fit(k, "func1pt8", f"{h}.layerB{i}", vol, "cubic", badval=0)
                             for i in (1, 2, 3)], axis=0)
            ref.append(mapper.fit(k, f"{h}.white", "fsaverage", depth))
        ours = project_to_fsaverage(vol, s, nsd, bounds="nsdcode", badval=0)
        np.testing.assert_allclose(ours, np.concatenate(ref), rtol=0, atol=1e-12)
