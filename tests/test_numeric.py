"""brainllm_utils._utils.numeric.pearson_r: the one Pearson of the package, against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from brainllm_utils._utils.numeric import pearson_r
from brainllm_utils.decoding import identification_rank, similarity_matrix
from brainllm_utils.encoding import pearson_r as encoding_pearson_r
from brainllm_utils.rsa import compare_rowwise


def test_matches_scipy_per_column_and_per_row(rng):
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    ref = [stats.pearsonr(a[:, j], b[:, j]).statistic for j in range(4)]
    np.testing.assert_allclose(pearson_r(a, b), ref, rtol=1e-12)
    np.testing.assert_allclose(pearson_r(a.T, b.T, axis=1), ref, rtol=1e-12)
    cos = (a * b).sum(0) / np.linalg.norm(a, axis=0) / np.linalg.norm(b, axis=0)
    np.testing.assert_allclose(pearson_r(a, b, centre=False), cos, rtol=1e-12)
    assert encoding_pearson_r is pearson_r


def test_constant_inputs_give_nan_everywhere():
    """One rule for every Pearson helper: NaN, and the caller decides."""
    x = np.arange(5.0)
    assert np.isnan(pearson_r(np.ones(5), x)) and np.isnan(pearson_r(x, np.ones(5)))
    assert np.isnan(pearson_r(np.zeros(5), x, centre=False))
    assert np.isnan(compare_rowwise(np.ones(6), np.arange(6.0), "pearson"))
    assert np.isnan(compare_rowwise(np.ones(6), np.arange(6.0), "spearman"))
    S = similarity_matrix(np.ones((3, 4)), np.arange(12.0).reshape(3, 4) ** 2)
    assert np.isnan(S).all()
    # identification: a prediction without similarity identifies nothing (worst rank)
    true = np.random.default_rng(0).normal(size=(5, 8))
    pred = true.copy()
    pred[2] = 1.0
    ranks = identification_rank(pred, true)
    assert ranks[2] == 4 and (ranks[[0, 1, 3, 4]] == 0).all()


def test_where_restricts_the_entries(rng):
    a, b = rng.normal(size=(3, 20)), rng.normal(size=(3, 20))
    keep = rng.random((3, 20)) < 0.6
    want = [stats.pearsonr(a[i, keep[i]], b[i, keep[i]]).statistic for i in range(3)]
    np.testing.assert_allclose(pearson_r(a, b, axis=1, where=keep), want, rtol=1e-12)


def test_shapes_must_agree_unless_broadcast(rng):
    a = rng.normal(size=(2, 10))
    with pytest.raises(ValueError, match="shapes differ"):
        pearson_r(a, a[0])
    np.testing.assert_allclose(pearson_r(a, a[0], axis=-1, broadcast=True)[0], 1.0)
