"""brainllm_utils.findings: what chapters record for the summary page."""

from __future__ import annotations

import json

import pytest

from brainllm_utils import findings, viz
from brainllm_utils.nsd import NSD


def test_record_and_load_round_trip(tiny_root, tmp_path, monkeypatch):
    monkeypatch.delenv("BRAINLLM_RUN", raising=False)
    nsd = NSD(tiny_root)
    rows = [findings.finding("RQ3", "decoding r", 0.51234, "> 0", True, "mostly positive"),
            findings.finding("RQ1", "searchlight", "12 of 100 vertices", agrees=None)]
    path = findings.record("04_decoding", rows, nsd, results_dir=tmp_path)
    assert path.name == "04_decoding.json"
    findings.record("02_rsa", [findings.finding("RQ1", "ROI RSA", float("nan"), agrees=False)],
                    nsd, results_dir=tmp_path)
    df = findings.load(nsd, results_dir=tmp_path)
    assert list(df.columns) == list(findings.FIELDS)
    assert list(df["rq"]) == ["RQ1", "RQ1", "RQ3"]  # RQ order, then chapter
    assert list(df["chapter"]) == ["02_rsa", "04_decoding", "04_decoding"]
    assert df.loc[2, "recovered"] == "0.512" and df.loc[0, "recovered"] == "nan"
    assert df.loc[2, "agrees"] is True or df.loc[2, "agrees"] == True  # noqa: E712


def test_grid_runs_are_kept_apart(tiny_root, tmp_path, monkeypatch):
    nsd = NSD(tiny_root)
    monkeypatch.setenv("BRAINLLM_RUN", "03_encoding__subjects-subj02")
    findings.record("03_encoding", [findings.finding("RQ1", "x", 1.0)], nsd, results_dir=tmp_path)
    assert findings.load(nsd, results_dir=tmp_path).empty
    monkeypatch.setenv("BRAINLLM_RUN", "03_encoding")
    findings.record("03_encoding", [findings.finding("RQ1", "x", 2.0)], nsd, results_dir=tmp_path)
    assert list(findings.load(nsd, results_dir=tmp_path)["recovered"]) == ["2.000"]
    files = sorted(p.name for p in findings.findings_dir(nsd, tmp_path).iterdir())
    assert files == ["03_encoding.json", "03_encoding__subjects-subj02.json"]
    assert json.loads((findings.findings_dir(nsd, tmp_path) / files[1]).read_text())["run"] \
        == "03_encoding__subjects-subj02"


def test_bad_findings_are_refused(tiny_root, tmp_path):
    with pytest.raises(ValueError, match="RQ9"):
        findings.finding("RQ9", "x", 1)
    with pytest.raises(ValueError, match="lacks"):
        findings.record("01_x", [{"rq": "RQ1", "analysis": "x"}], NSD(tiny_root),
                        results_dir=tmp_path)


def test_scorecard_figure(tiny_root, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nsd = NSD(tiny_root)
    findings.record("05_image_to_llm", [findings.finding("RQ4", "a", 0.1, agrees=True),
                                        findings.finding("RQ4", "b", 0.2, agrees=False)],
                    nsd, results_dir=tmp_path, run="05_image_to_llm")
    fig, ax = plt.subplots()
    out = viz.plot_findings(findings.load(nsd, results_dir=tmp_path), ax=ax)
    assert out is ax
    texts = [t.get_text() for t in ax.texts]
    assert "RQ4" in texts and "✓" in texts and "✗" in texts
    assert "1 agree, 1 disagree" in ax.get_title(loc="left")
    viz.plot_findings(findings.load(nsd, results_dir=tmp_path / "none"), ax=ax)
    plt.close(fig)
