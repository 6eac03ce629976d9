"""Any text model against the brain, end to end (issue 17): tiny random-weight encoder and
decoder models, built here from their configs, run through the model-comparison chapter (ROI
RSA and encoding) by the batch runner on a Dask worker process, with their layer sweeps; the
embeddings the worker computed (read back from its cache without loading the model) equal
the models' own hidden states from ``transformers``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("dask.distributed")

from brainllm_utils import batch, features  # noqa: E402
from brainllm_utils.features import _hf, embeddings  # noqa: E402
from brainllm_utils.nsd import NSD  # noqa: E402
from test_text_models import _build, _reference, _states  # noqa: E402

MODELS = (("bert", "mean"), ("gpt2", "last"))


@pytest.mark.slow
def test_tiny_encoder_and_decoder_sweeps_run_on_a_dask_worker(tiny_root, tmp_path, monkeypatch):
    nsd = NSD(tiny_root)
    texts = [c for cs in nsd.captions(np.arange(nsd.n_images)) for c in cs]
    folders = {kind: _build(tmp_path / kind, kind, texts=texts) for kind, _ in MODELS}
    sweeps = {kind: features.layer_sweep(f"hf:{folders[kind]}?pooling={pooling}") for kind, pooling in MODELS}
    assert [len(v) for v in sweeps.values()] == [4, 4]  # embeddings + 3 layers each
    names = [n for v in sweeps.values() for n in v]
    cache, results = tmp_path / "kernel_cache", tmp_path / "results"
    jobs = batch.plan_jobs(["08_model_comparison"], fixed={"models": names, "oracles": False},
                           data_home=tiny_root, smoke=True, output_dir=tmp_path / "out")
    (res,) = batch.run_jobs(jobs, scheduler="local", workers=1, progress=False,
                            env={"BRAINLLM_CACHE": str(cache), "BRAINLLM_RESULTS": str(results)})
    assert res.status == "executed", res
    assert int(res.worker.rsplit(":", 1)[1]) != os.getpid()  # a worker process, not this one

    # every layer of both models scored in both analyses, in every ROI
    (path,) = results.rglob("model_scores.csv")
    scores = pd.read_csv(path)
    for name in names:
        rows = scores[scores["model"] == name]
        assert set(rows["metric"]) == {"rsa", "encoding"}, name
        assert np.isfinite(rows["value"]).all() and rows["roi"].nunique() > 1, name
    # the layers of a sweep are told apart (random weights: different geometry per layer)
    rsa = scores[scores["metric"] == "rsa"].groupby("model")["value"].mean()
    assert rsa[sweeps["bert"]].nunique() == 4 and rsa[sweeps["gpt2"]].nunique() == 4

    # the worker's numbers are transformers' hidden states: read back from its cache (loading
    # the model is forbidden here), against each caption run alone, pooled, averaged per image
    monkeypatch.setenv("BRAINLLM_CACHE", str(cache))
    monkeypatch.setattr(embeddings, "_load_model", lambda *a, **k: pytest.fail("the cache was missed"))
    ids = nsd.shared_test_images()[:6]
    caps = nsd.captions(ids)
    flat = [c for cs in caps for c in cs]
    bounds = np.cumsum([0] + [len(cs) for cs in caps])
    for kind, pooling in MODELS:
        states = _states(folders[kind], flat)
        for name in sweeps[kind]:
            layer = _hf.parse_text_model_name(name)[1]["layer"]
            ref = _reference(states, layer, pooling)
            expected = np.stack([ref[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])
            got = features.build(name, nsd, ids)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(expected).max()),
                                       err_msg=name)
