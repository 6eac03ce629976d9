"""Fault injection: the batch runner and the sandbox generator (reliability report rows 51-59).

Every case asserts either a clear error (its type, and a message naming the notebook or
argument, the value's source and what was expected) raised BEFORE any notebook starts, or a
result equal to a clean run. Most cases call the planning and validation functions directly
(fast); a few go through the command lines in a subprocess (exit status 2, no traceback);
the kill -9 cases kill a real run on the tiny sandbox and rerun it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from brainllm_utils import batch
from brainllm_utils.book import batch as _batch
from brainllm_utils.book import list_notebooks, notebook_parameters
from brainllm_utils.paths import REPO_ROOT
from brainllm_utils.synth import make_synthetic_nsd

pytestmark = pytest.mark.faults

BPE = batch.BatchParameterError


def _plan(root, notebooks, fixed=None, grid=None, tmp=None, **kw):
    return batch.plan_jobs(notebooks, grid=grid, fixed=fixed, data_home=root, output_dir=tmp, **kw)


# ----------------------------------------------------------------------------------------------
# rows 51-53: every parameter validated up front (type against the default, range, data on disk)
# (id, notebook, --set values, the message must match)
PARAM_CASES = [
    # row 51: handled well already; kept as cases
    ("row51-unknown-parameter", "02_rsa", {"bogus": 1}, r"declared by none"),
    ("row51-unknown-subject", "02_rsa", {"subjects": ["subj07"]}, r"02_rsa: subjects=\['subj07'\] \(--set\): unknown subject"),
    ("row51-bad-device", "02_rsa", {"device": "gpu"}, r"device='gpu' \(--set\).*'auto', 'cpu', 'cuda'"),
    ("row51-unknown-feature", "02_rsa", {"feature_spaces": ["mpnet", "nope"]}, r"unknown feature space 'nope'"),
    ("row51-unknown-preset", "05_image_to_llm", {"preset": "huge"}, r"preset='huge' \(--set\): unknown; available"),
    ("row51-unknown-comparison-model", "05_image_to_llm", {"comparison_models": ["vgg99"]}, r"comparison_models.*unknown"),
    ("row51-run-name-given", "02_rsa", {"run_name": "x"}, r"'run_name' is set by the batch runner"),
    ("row51-sbert-not-installed", "02_rsa", {"rq2_spaces": ["sbert:no-such-model-here"]}, r"rq2_spaces.*not installed"),
    # row 52: these used to pass validation and fail inside the kernel
    ("row52-subject-not-on-disk", "00_data_tour", {"subject": 4}, r"00_data_tour: subject=4 \(--set\): unknown subject 4.*subj03"),
    ("row52-subject-float", "01_feature_spaces", {"subject": 1.0}, r"subject=1.0 \(--set\): not a subject"),
    ("row52-n-examples-text", "00_data_tour", {"n_examples": "abc"}, r"n_examples='abc' \(--set\): not an integer.*expected an integer ≥ 1"),
    ("row52-n-examples-negative", "00_data_tour", {"n_examples": -1}, r"n_examples=-1 \(--set\): out of range; expected an integer ≥ 1"),
    ("row52-n-examples-zero", "00_data_tour", {"n_examples": 0}, r"n_examples=0"),
    ("row52-n-examples-float", "00_data_tour", {"n_examples": 2.5}, r"n_examples=2.5 .*not an integer"),
    ("row52-seed-negative", "00_data_tour", {"seed": -1}, r"seed=-1 \(--set\): out of range; expected an integer ≥ 0"),
    ("row52-seed-null", "01_feature_spaces", {"seed": None}, r"seed=None \(--set\): None is not allowed"),
    ("row52-seed-bool", "01_feature_spaces", {"seed": True}, r"seed=True .*not an integer"),
    ("row52-set-size-two", "02_rsa", {"set_size": 2}, r"set_size=2 .*expected an integer ≥ 3"),
    ("row52-n-sets-zero", "02_rsa", {"n_sets": 0}, r"n_sets=0 .*≥ 1 \(None: all"),
    ("row52-n-pairs-zero", "01_feature_spaces", {"n_pairs": 0}, r"n_pairs=0"),
    ("row52-searchlight-radius-zero", "02_rsa", {"searchlight_radius": 0}, r"searchlight_radius=0"),
    ("row52-surface-radius-negative", "02_rsa", {"surface_radius_mm": -1.0}, r"surface_radius_mm=-1.0 .*> 0"),
    ("row52-surface-radius-nan", "02_rsa", {"surface_radius_mm": float("nan")}, r"surface_radius_mm=nan .*finite"),
    ("row52-feature-spaces-empty", "02_rsa", {"feature_spaces": []}, r"feature_spaces=\[\] .*non-empty"),
    ("row52-feature-spaces-string", "01_feature_spaces", {"feature_spaces": "mpnet"}, r"feature_spaces='mpnet' .*not a list"),
    ("row52-feature-spaces-duplicate", "02_rsa", {"feature_spaces": ["mpnet", "mpnet"]}, r"duplicate item"),
    ("row52-fasttext-missing-file", "02_rsa", {"fasttext_path": "/no/such/crawl.vec"}, r"fasttext_path='/no/such/crawl.vec' \(--set\): not a file"),
    ("row52-cv-one", "03_encoding", {"cv": 1}, r"cv=1 .*≥ 2"),
    ("row52-q-above-one", "03_encoding", {"q": 1.5}, r"q=1.5 .*\(0, 1\)"),
    ("row52-q-zero", "03_encoding", {"q": 0}, r"q=0 "),
    ("row52-n-views-five", "03_encoding", {"n_views": 5}, r"n_views=5 .*1\.\.4"),
    ("row52-alpha-grid-reversed", "03_encoding", {"alpha_grid": [5, -1, 13]}, r"alpha_grid=\[5, -1, 13\] .*min < max"),
    ("row52-alpha-grid-short", "04_decoding", {"alpha_grid": [0, 7]}, r"alpha_grid=\[0, 7\] .*triple"),
    ("row52-n-ratios-one", "03_encoding", {"n_ratios": 1}, r"n_ratios=1"),
    ("row52-unknown-atlas", "03_encoding", {"rq2_roi": "nowhere"}, r"rq2_roi='nowhere' .*no fsaverage atlas.*streams"),
    ("row52-encoding-roi-unknown", "03_encoding", {"encoding_roi": "v1"}, r"encoding_roi='v1'"),
    ("row52-partition-roi-int", "03_encoding", {"partition_roi": 3}, r"partition_roi=3 .*not an atlas"),
    ("row52-contrast-unknown-set", "03_encoding", {"contrasts": [["people", "cars"]]}, r"unknown set\(s\) \['cars'\]"),
    ("row52-contrast-self", "03_encoding", {"contrasts": [["food", "food"]]}, r"with itself"),
    ("row52-contrast-sets-empty-list", "03_encoding", {"contrast_sets": {"a": []}}, r"contrast_sets.*set 'a'"),
    ("row52-decoding-roi-unknown", "04_decoding", {"roi": "bogus"}, r"04_decoding: roi='bogus'"),
    ("row52-single-roi-unknown", "04_decoding", {"single_rois": ["early", "v9"]}, r"'v9' is not a label of atlas 'streams'"),
    ("row52-pool-per-image-negative", "04_decoding", {"pool_per_image": -1}, r"pool_per_image=-1"),
    ("row52-corpus-file-missing", "04_decoding", {"corpus_file": "/no/corpus.tsv"}, r"corpus_file=.*not a file"),
    ("row52-gallery-subject-not-analysed", "04_decoding", {"subjects": [1, 2], "gallery_subject": 3}, r"gallery_subject=3 .*not one of the analysed"),
    ("row52-n-gallery-zero", "04_decoding", {"n_gallery": 0}, r"n_gallery=0"),
    ("row52-subjects-scalar", "03_encoding", {"subjects": 1}, r"subjects=1 \(--set\): not a list"),
    ("row52-subjects-duplicate", "03_encoding", {"subjects": [1, "subj01"]}, r"subjects=.*duplicate|subjects=.*distinct"),
    ("row52-sessions-beyond-disk", "03_encoding", {"sessions": "1-9"}, r"sessions='1-9' \(--set\): for subj01"),
    ("row52-seeds-empty", "05_image_to_llm", {"seeds": []}, r"seeds=\[\] .*non-empty"),
    ("row52-seeds-duplicate", "05_image_to_llm", {"seeds": [0, 0]}, r"seeds=\[0, 0\] .*duplicate"),
    ("row52-size-sweep-zero", "05_image_to_llm", {"size_sweep": [0, 10]}, r"size_sweep=\[0, 10\]"),
    ("row52-n-train-zero", "05_image_to_llm", {"n_train": 0}, r"n_train=0"),
    ("row52-n-val-text", "05_image_to_llm", {"n_val": "8"}, r"n_val='8' .*not an integer"),
    ("row52-epochs-zero", "05_image_to_llm", {"epochs": 0}, r"epochs=0"),
    ("row52-image-size-tiny", "05_image_to_llm", {"image_size": 4}, r"image_size=4 .*≥ 8"),
    ("row52-readout-epochs-zero", "05_image_to_llm", {"readout_epochs": 0}, r"readout_epochs=0"),
    ("row52-num-workers-negative", "05_image_to_llm", {"num_workers": -1}, r"num_workers=-1"),
    ("row52-networks-dir-missing", "05_image_to_llm", {"networks_dir": "/no/nets"}, r"networks_dir=.*not a folder"),
    ("row52-rois-unknown", "05_image_to_llm", {"rois": ["early", "v1"]}, r"'v1' is not a label of the streams atlas"),
    # row 53: a boolean accepts only true/false, 1/0, yes/no
    ("row53-bool-maybe", "05_image_to_llm", {"transfer_on_sample_sets": "maybe"}, r"transfer_on_sample_sets='maybe' \(--set\): not a boolean; expected a boolean: true/false, 1/0 or yes/no"),
    ("row53-bool-two", "05_image_to_llm", {"transfer_on_sample_sets": 2}, r"not a boolean"),
    ("row53-smoke-is-no-parameter", "05_image_to_llm", {"smoke": "maybe"}, r"'smoke' is declared by none"),
]


@pytest.mark.parametrize("case", PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_invalid_parameter_is_refused_before_anything_runs(case, tiny_root, tmp_path):
    _, notebook, fixed, match = case
    with pytest.raises(BPE, match=match):
        _plan(tiny_root, [notebook], fixed=fixed, tmp=tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing may be written for a refused plan"


GRID_CASES = [
    ("row51-grid-no-values", {"seed": []}, r"grid parameter 'seed': no values"),
    ("row51-grid-not-a-list", {"seed": 3}, r"--grid seed=3: expected a list"),
    ("row51-grid-duplicate-points", {"seed": [0, 0]}, r"same output notebook"),
    ("row52-grid-one-bad-point", {"n_examples": [4, -2]}, r"00_data_tour: n_examples=-2 \(--grid\)"),
]


@pytest.mark.parametrize("case", GRID_CASES, ids=[c[0] for c in GRID_CASES])
def test_the_whole_grid_is_validated_up_front(case, tiny_root, tmp_path):
    _, grid, match = case
    with pytest.raises(BPE, match=match):
        _plan(tiny_root, ["00_data_tour"], grid=grid, tmp=tmp_path)


ROOT_CASES = [
    ("row52-fake-root-without-subjects", "empty", r"00_data_tour: subject='subj01' \(notebook default\): unknown "
     r"subject 'subj01': subjects with betas under .*: none"),
    ("row52-root-is-a-file", "afile", r"data_home='.*afile': no such folder .*\(--data\)"),
    ("row52-bad-grid-root", "grid", r"data_home='.*nowhere': no such folder .*\(--grid\)"),
]


@pytest.mark.parametrize("case", ROOT_CASES, ids=[c[0] for c in ROOT_CASES])
def test_row52_bad_roots_are_named_with_their_source(case, tiny_root, tmp_path):
    _, kind, match = case
    (tmp_path / "empty" / "nsddata").mkdir(parents=True)
    (tmp_path / "empty" / "nsddata_betas").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BPE, match=match):
        if kind == "grid":
            _plan(None, ["00_data_tour"], grid={"data_home": [str(tiny_root), str(tmp_path / "nowhere")]},
                  tmp=tmp_path / "out")
        else:
            _plan(tmp_path / kind, ["00_data_tour"], tmp=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_invalid_value_of_the_grid_is_listed_at_once(tiny_root, tmp_path):
    with pytest.raises(BPE) as err:
        _plan(tiny_root, ["00_data_tour", "01_feature_spaces"], fixed={"seed": -1}, grid={"n_examples": [0, 2]},
              tmp=tmp_path)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("3 invalid parameter value(s); nothing was run")
    assert any(x.startswith("01_feature_spaces: seed=-1 (--set)") for x in lines)
    assert any(x.startswith("00_data_tour: n_examples=0 (--grid)") for x in lines)


CLI_ARG_CASES = [  # parsed --set/--grid text: the CLI's own parsing layer
    ("row51-set-without-equals", ["--set", "seed"], r"expected NAME=VALUE"),
    ("row51-grid-json-not-list", ["--grid", 'seed=[1'], r"seed='\[1' .*not an integer|expected a list"),
    ("row52-fake-root", ["--data", "{fake}"], r"not an NSD root"),
    ("row52-missing-root", ["--data", "{missing}"], r"data_home='.*nowhere': no such folder .*\(--data\)"),
    ("row51-unknown-notebook", ["99_nothing"], r"unknown notebook"),
    ("row51-unknown-profile", ["--profile", "fast"], r"profile='fast': unknown"),
]


@pytest.mark.parametrize("case", CLI_ARG_CASES, ids=[c[0] for c in CLI_ARG_CASES])
def test_cli_refuses_with_status_2_and_a_message(case, tiny_root, tmp_path, capsys):
    _, args, match = case
    fake = tmp_path / "fake"
    (fake / "nsddata").mkdir(parents=True)
    args = [a.format(fake=fake, missing=tmp_path / "nowhere") for a in args]
    if "--data" not in args:
        args += ["--data", str(tiny_root)]
    if not any(a.startswith(("0", "9")) for a in args):
        args = ["00_data_tour"] + args
    rc = batch.main(["run", *args, "--output-dir", str(tmp_path / "out"), "--scheduler", "serial"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert _match(match, err), err
    assert not (tmp_path / "out").exists()


def _match(pattern, text):
    import re

    return re.search(pattern, text) is not None


BOOL_CASES = [("row53-bool-yes", "yes", True), ("row53-bool-true", "true", True), ("row53-bool-1", "1", True),
              ("row53-bool-int1", 1, True), ("row53-bool-no", "no", False), ("row53-bool-False", "False", False),
              ("row53-bool-0", "0", False), ("row53-bool-int0", 0, False)]


@pytest.mark.parametrize("case", BOOL_CASES, ids=[c[0] for c in BOOL_CASES])
def test_boolean_spellings_are_normalised(case, tiny_root, tmp_path):
    _, value, expected = case
    (job,) = _plan(tiny_root, ["05_image_to_llm"], fixed={"transfer_on_sample_sets": value}, tmp=tmp_path)
    assert job.parameters["transfer_on_sample_sets"] is expected
    (same,) = _plan(tiny_root, ["05_image_to_llm"], fixed={"transfer_on_sample_sets": expected}, tmp=tmp_path)
    assert same.fingerprint == job.fingerprint, "a spelling of the same boolean is the same run"


def test_every_parameter_of_every_notebook_has_a_rule_and_its_default_passes(tiny_root):
    """A rule per declared parameter, whose kind is the type of the notebook's default."""
    missing, wrong_kind = [], []
    for source in list_notebooks():
        for name, default in notebook_parameters(source).items():
            rule = batch.PARAMETER_RULES.get(name)
            if rule is None:
                missing.append(f"{source.stem}.{name}")
                continue
            if default is None:
                if not rule.nullable:
                    wrong_kind.append(f"{source.stem}.{name}: default None, rule not nullable")
            elif not isinstance(default, _batch._KIND_TYPES[rule.kind]) or (
                    rule.kind != "bool" and isinstance(default, bool)):
                wrong_kind.append(f"{source.stem}.{name}: default {default!r} vs kind {rule.kind}")
        batch.validate_parameters(source.stem, {}, tiny_root)  # every default passes its rule
    assert not missing, f"parameters without a rule: {missing}"
    assert not wrong_kind, wrong_kind


RULE_CASES = [f"row52-rule-{n}" for n in sorted(batch.PARAMETER_RULES)]


@pytest.mark.parametrize("name", sorted(batch.PARAMETER_RULES), ids=RULE_CASES)
def test_every_rule_refuses_a_value_of_the_wrong_type(name, tiny_root, tmp_path):
    """A dict is no value of any notebook parameter except contrast_sets/sessions: each rule must say so."""
    bad = ["not", "a", "dict"] if name in ("contrast_sets",) else {"x": object()}
    if name == "sessions":
        bad = {"subj01": "x-y"}
    stems = [s.stem for s in list_notebooks() if name in notebook_parameters(s)]
    if name in ("run_name", "output_dir", "data_home"):
        with pytest.raises(BPE):  # set by the batch (run_name, output_dir) or not an NSD root
            _plan(tiny_root, stems[:1], fixed={name: bad}, tmp=tmp_path)
        return
    with pytest.raises(BPE, match=rf"{stems[0]}: {name}=.* \(--set\): .*expected"):
        _plan(tiny_root, stems[:1], fixed={name: bad}, tmp=tmp_path)


# ----------------------------------------------------------------------------------------------
# row 54: one precedence, --set > --grid > profile > environment > notebook default
def _vec(tmp_path, name):
    path = tmp_path / name
    path.write_text("the 0.1 0.2\n")
    return str(path)


def test_row54_set_data_home_beats_the_environment(tiny_root, tree_copy, tmp_path, monkeypatch):
    other = tree_copy()
    monkeypatch.setenv("BRAINLLM_DATA", str(tiny_root))
    (job,) = _plan(None, ["00_data_tour"], fixed={"data_home": str(other)}, tmp=tmp_path)
    assert job.parameters["data_home"] == str(other.resolve())
    (env,) = _plan(None, ["00_data_tour"], tmp=tmp_path)
    assert env.parameters["data_home"] == str(Path(tiny_root).resolve())


PAIR_CASES = [
    "row54-set-vs-grid", "row54-set-vs-profile", "row54-set-vs-environment", "row54-set-vs-default",
    "row54-grid-vs-profile", "row54-grid-vs-environment", "row54-grid-vs-default",
    "row54-profile-vs-environment", "row54-profile-vs-default", "row54-environment-vs-default",
    "row54-data-vs-set-data-home", "row54-data-vs-grid-data-home"]


@pytest.mark.parametrize("pair", PAIR_CASES, ids=PAIR_CASES)
def test_row54_precedence_of_every_pair_of_sources(pair, tiny_root, tree_copy, tmp_path, monkeypatch):
    env_file, high = _vec(tmp_path, "env.vec"), _vec(tmp_path, "high.vec")
    monkeypatch.setenv("BRAINLLM_FASTTEXT", env_file)
    monkeypatch.delenv("BRAINLLM_DATA", raising=False)

    def one(**kw):
        (job,) = _plan(kw.pop("root", tiny_root), ["02_rsa"], tmp=tmp_path, **kw)
        return job.parameters

    if pair == "row54-set-vs-grid":  # the grid's labels would lie: refused
        with pytest.raises(BPE, match=r"\['set_size'\] given both by --set .* and by --grid"):
            one(fixed={"set_size": 20}, grid={"set_size": [30]})
    elif pair == "row54-set-vs-profile":
        assert one(fixed={"set_size": 20}, smoke=True)["set_size"] == 20
        assert one(fixed={"searchlight_radius": 2}, profile="paper")["searchlight_radius"] == 2
    elif pair == "row54-set-vs-environment":
        assert one(fixed={"fasttext_path": high})["fasttext_path"] == high
    elif pair == "row54-set-vs-default":
        assert one(fixed={"seed": 3})["seed"] == 3
    elif pair == "row54-grid-vs-profile":
        assert one(grid={"set_size": [30]}, smoke=True)["set_size"] == 30
    elif pair == "row54-grid-vs-environment":
        assert one(grid={"fasttext_path": [high]})["fasttext_path"] == high
    elif pair == "row54-grid-vs-default":
        assert one(grid={"seed": [4]})["seed"] == 4
    elif pair == "row54-profile-vs-environment":
        monkeypatch.setitem(_batch.PROFILES["paper"], "02_rsa", {**_batch.PROFILES["paper"]["02_rsa"],
                                                                "fasttext_path": high})
        assert one(profile="paper")["fasttext_path"] == high
    elif pair == "row54-profile-vs-default":
        params = one(profile="paper")
        assert params["searchlight_radius"] == 6 and params["n_sets"] is None
    elif pair == "row54-environment-vs-default":
        assert one()["fasttext_path"] == env_file  # resolved, so part of the fingerprint
        monkeypatch.setenv("BRAINLLM_DATA", str(tiny_root))
        assert one(root=None)["data_home"] == str(Path(tiny_root).resolve())
        monkeypatch.delenv("BRAINLLM_FASTTEXT")
        assert "fasttext_path" not in one()
    elif pair == "row54-data-vs-set-data-home":
        other = tree_copy()
        with pytest.raises(BPE, match=r"data_home given twice: --data .* and --set data_home="):
            one(fixed={"data_home": str(other)})
        assert one(fixed={"data_home": str(tiny_root)})["data_home"] == str(Path(tiny_root).resolve())
    elif pair == "row54-data-vs-grid-data-home":
        other = tree_copy()
        with pytest.raises(BPE, match=r"data_home given both by --data/--set"):
            one(grid={"data_home": [str(other)]})
        jobs = _plan(None, ["00_data_tour"], grid={"data_home": [str(tiny_root), str(other)]}, tmp=tmp_path)
        assert [j.parameters["data_home"] for j in jobs] == [str(Path(tiny_root).resolve()), str(other.resolve())]
        assert jobs[0].fingerprint != jobs[1].fingerprint


SOURCE_CASES = ["environment", "profile", "notebook-default"]


@pytest.mark.parametrize("source", SOURCE_CASES, ids=[f"row54-error-names-source-{s}" for s in SOURCE_CASES])
def test_row54_an_invalid_value_names_its_source(source, tiny_root, tmp_path, monkeypatch):
    if source == "environment":
        monkeypatch.setenv("BRAINLLM_GLOVE", str(tmp_path / "gone.txt"))
        with pytest.raises(BPE, match=r"02_rsa: glove_path='.*gone.txt' \(environment \$BRAINLLM_GLOVE\): not a file"):
            _plan(tiny_root, ["02_rsa"], tmp=tmp_path)
    elif source == "profile":
        monkeypatch.setitem(_batch.PROFILES["smoke"], "02_rsa", {**_batch.PROFILES["smoke"]["02_rsa"], "set_size": 1})
        with pytest.raises(BPE, match=r"02_rsa: set_size=1 \(profile 'smoke' \(--smoke\)\)"):
            _plan(tiny_root, ["02_rsa"], tmp=tmp_path, smoke=True)
    else:
        nbs = tmp_path / "nbs"
        _toy(nbs / "01_bad.ipynb", "data_home = None\ncount = 3", "print(count)")
        nb = nbformat.read(nbs / "01_bad.ipynb", as_version=4)
        nb.cells[1].source = "data_home = None\nseed = -4"
        nbformat.write(nb, nbs / "01_bad.ipynb")
        with pytest.raises(BPE, match=r"01_bad: seed=-4 \(notebook default\): out of range"):
            _plan(tiny_root, None, tmp=tmp_path, notebook_dir=nbs)
        # a parameter outside the rules is checked against its default's type
        _toy(nbs / "01_bad.ipynb", "data_home = None\ncount = 3", "print(count)")
        with pytest.raises(BPE, match=r"01_bad: count='x' \(--set\): not an integer"):
            _plan(tiny_root, None, fixed={"count": "x"}, tmp=tmp_path, notebook_dir=nbs)


# ----------------------------------------------------------------------------------------------
# rows 55-56: --scheduler, --workers, --threads refused at once
RUN_OPTION_CASES = [
    ("row55-scheduler-bogus", dict(scheduler="bogus"), r"--scheduler 'bogus': expected local .*serial .*slurm .*tcp://host:port"),
    ("row55-scheduler-no-port", dict(scheduler="tcp://localhost"), r"--scheduler 'tcp://localhost'"),
    ("row55-scheduler-port-too-large", dict(scheduler="tcp://localhost:99999"), r"--scheduler"),
    ("row55-scheduler-not-a-client", dict(scheduler=3), r"scheduler=3"),
    ("row56-workers-zero", dict(scheduler="local", workers=0), r"--workers 0: expected an integer ≥ 1"),
    ("row56-workers-negative", dict(scheduler="local", workers=-2), r"--workers -2"),
    ("row56-workers-float", dict(scheduler="local", workers=1.5), r"--workers 1.5"),
    ("row56-workers-text", dict(scheduler="local", workers="2"), r"--workers '2'"),
    ("row56-threads-zero", dict(scheduler="serial", threads=0), r"--threads 0: expected an integer ≥ 1"),
    ("row56-threads-bool", dict(scheduler="serial", threads=True), r"--threads True"),
]


@pytest.mark.parametrize("case", RUN_OPTION_CASES, ids=[c[0] for c in RUN_OPTION_CASES])
def test_run_options_are_refused_before_anything_runs(case, tiny_root, tmp_path):
    _, options, match = case
    jobs = _plan(tiny_root, ["06_summary"], tmp=tmp_path / "out")
    with pytest.raises(BPE, match=match):
        batch.run_jobs(jobs, progress=False, **options)
    assert not (tmp_path / "out").exists()


def test_row55_valid_scheduler_spellings_pass_the_check():
    for s in ("local", "serial", "slurm", "tcp://127.0.0.1:8786", "tls://node-3.cluster:8786", "10.0.0.2:8786"):
        _batch._check_run_options(s, 1, 1)


CLI_PROCESS_CASES = [
    ("row55-cli-scheduler-bogus", ["--scheduler", "bogus"], "--scheduler 'bogus': expected local"),
    ("row56-cli-workers-zero", ["--workers", "0"], "--workers '0': expected an integer ≥ 1 or 'auto'"),
    ("row56-cli-threads-zero", ["--threads", "0"], "--threads 0: expected an integer ≥ 1"),
    ("row53-cli-bool-maybe", ["--set", "transfer_on_sample_sets=maybe"], "not a boolean"),
    ("row52-cli-n-examples-abc", ["--set", "n_examples=abc"], "00_data_tour: n_examples='abc' (--set)"),
]


@pytest.mark.parametrize("case", CLI_PROCESS_CASES, ids=[c[0] for c in CLI_PROCESS_CASES])
def test_cli_user_error_exits_2_without_a_traceback(case, tiny_root, tmp_path):
    _, args, message = case
    cmd = [sys.executable, "-m", "brainllm_utils.batch", "run", "00_data_tour", "05_image_to_llm", "--data",
           str(tiny_root), "--output-dir", str(tmp_path / "out"), *args]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_help_states_the_precedence(capsys):
    with pytest.raises(SystemExit):
        batch.main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "highest first: --set" in out and "--grid" in out and "the environment" in out
    doc = (REPO_ROOT / "book" / "getting_nsd.md").read_text()
    assert "highest first" in doc and "--set data_home=/a" in doc


# ----------------------------------------------------------------------------------------------
# row 57: two runs on one output folder (the lock held here or by another process); a lock file
# left by a dead run is no refusal
ROW57_CASES = [("row57-second-run-refused", "here"), ("row57-second-run-refused-lock-held-by-another-process", "other"),
               ("row57-refusal-leaves-outputs-untouched", "untouched"), ("row57-stale-lock-of-a-dead-run-is-taken", "stale")]


@pytest.mark.parametrize("case", ROW57_CASES, ids=[c[0] for c in ROW57_CASES])
def test_row57_second_run_on_the_same_folder(case, tiny_root, tmp_path, capsys):
    _, how = case
    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".batch.lock"
    if how == "stale":  # the lock file and a temp notebook of a killed run, no live holder
        lock.write_text("")
        (out / ".06_summary.ipynb.123.tmp").write_text("{}")
        with _batch._output_lock(out):
            assert not list(out.glob(".*.ipynb.*")), "the dead run's temp notebook remains"
        return
    earlier = how != "here"  # an output the refused run must leave alone (not a valid notebook)
    if earlier:
        (out / "06_summary.ipynb").write_text("earlier result")
    before = sorted(p.name for p in out.iterdir())
    holder = None
    if how == "other":
        marker = tmp_path / "held"
        code = (f"from brainllm_utils._utils.paths import file_lock; import pathlib, time\n"
                f"with file_lock({str(lock)!r}, blocking=False):\n"
                f"    pathlib.Path({str(marker)!r}).write_text('1'); time.sleep(120)\n")
        holder = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert _wait_for(marker.exists, 60.0), "the other process never took the lock"
    try:
        ctx = _batch._output_lock(out) if how in ("here", "untouched") else None
        if ctx is not None:
            ctx.__enter__()
        try:
            rc = batch.main(["run", "06_summary", "--data", str(tiny_root), "--output-dir", str(out),
                             "--scheduler", "serial"])
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
    err = capsys.readouterr().err
    assert rc == 2 and "another batch run is writing to" in err and str(out) in err and "Traceback" not in err, err
    # nothing read, discarded or written (before the fix, the refused run first discarded outputs it
    # could not parse, e.g. one the other run was still writing); the lock file is the holder's
    assert sorted(p.name for p in out.iterdir() if p.name != ".batch.lock") == before
    assert not earlier or (out / "06_summary.ipynb").read_text() == "earlier result"


# ----------------------------------------------------------------------------------------------
# row 58: kill -9 mid-notebook, then rerun: no orphan kernel, no temp files, the clean result
def _toy(path: Path, params: str, *cells: str) -> Path:
    nb = new_notebook()
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {path.stem}"), p] + [new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _wait_for(predicate, limit=120.0):
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.2)
    return predicate()


KILL_CASES = ["row58-kill9-batch-mid-notebook", "row58-kill9-whole-group", "row58-kill9-dask-local-cluster"]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@pytest.mark.parametrize("where", KILL_CASES, ids=KILL_CASES)
def test_row58_kill9_then_rerun(where, tiny_root, tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    hold, pidfile = tmp_path / "hold", tmp_path / "kernel.pid"
    _toy(nbs / "01_wait.ipynb", "data_home = None\nhold = ''\npid_file = ''\nn = 3",
         "import os, time\nif pid_file:\n    open(pid_file, 'w').write(str(os.getpid()))\n"
         "while hold and os.path.exists(hold):\n    time.sleep(0.1)",
         "print('sum', sum(range(n)))")
    hold.write_text("x")
    fixed = ["--set", f"hold={json.dumps(str(hold))}", "--set", f"pid_file={json.dumps(str(pidfile))}"]
    scheduler = ["--scheduler", "local", "--workers", "1"] if "dask" in where else ["--scheduler", "serial"]
    cmd = [sys.executable, "-m", "brainllm_utils.batch", "run", "--data", str(tiny_root), "--notebook-dir",
           str(nbs), "--output-dir", str(out), *scheduler, *fixed]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()), "the notebook never started"
        kernel = int(pidfile.read_text())
        assert list(out.glob(".01_wait.ipynb.*")), "no temporary output while running"
        below = _descendants(proc.pid)  # the kernel, and with Dask the nanny and worker processes
        assert kernel in below
    finally:
        if where.endswith("whole-group"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the kernel notices its parent died (ipykernel's parent poller) and exits: no orphan
    assert _wait_for(lambda: not _pid_alive(kernel), 60.0), f"orphan kernel {kernel}"
    assert _wait_for(lambda: not [p for p in below if _pid_alive(p)], 90.0), \
        f"orphan processes {[p for p in below if _pid_alive(p)]}"
    assert not (out / "01_wait.ipynb").exists()
    hold.unlink()
    rerun = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(out.glob(".*.ipynb.*")), "temporary files of the killed run remain"
    nb = nbformat.read(out / "01_wait.ipynb", as_version=4)
    assert "sum 3" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    again = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "| 01_wait | skipped |" in again.stdout, again.stdout


# ----------------------------------------------------------------------------------------------
# row 59: the sandbox generator's arguments, and the temporary trees of a killed run
SYNTH_CASES = [
    ("row59-seed-negative", dict(seed=-1), r"seed=-1: expected an integer ≥ 0"),
    ("row59-seed-float", dict(seed=1.5), r"seed=1.5: expected an integer"),
    ("row59-seed-bool", dict(seed=True), r"seed=True"),
    ("row59-trials-negative", dict(overrides={"trials_per_session": -5}), r"trials_per_session must be an int >= 12, got -5"),
    ("row59-unknown-override", dict(overrides={"trials": 60}), r"unknown overrides \['trials'\] \(keys of the overrides argument\); known"),
    ("row59-overrides-not-dict", dict(overrides=[("trials_per_session", 60)]), r"overrides=.*expected a dict"),
    ("row59-unknown-preset", dict(preset="huge"), r"unknown preset 'huge'"),
    ("row59-overwrite-text", dict(overwrite="yes"), r"overwrite='yes': expected True or False"),
    ("row59-root-is-a-file", dict(root="afile"), r"root=.*afile': is a file, not a folder"),
    ("row59-root-is-a-file-overwrite", dict(root="afile", overwrite=True), r"is a file, not a folder"),
    ("row59-root-parent-is-a-file", dict(root="afile/sub"), r"afile is a file, not a folder"),
    ("row59-root-not-empty", dict(root="full"), r"exists and is not empty; pass overwrite=True"),
]


@pytest.mark.parametrize("case", SYNTH_CASES, ids=[c[0] for c in SYNTH_CASES])
def test_row59_synth_arguments(case, tmp_path):
    _, kw, match = case
    (tmp_path / "afile").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    kw = {"preset": "tiny", "seed": 0, **kw}
    root = tmp_path / kw.pop("root", "new")
    with pytest.raises(ValueError, match=match):
        make_synthetic_nsd(root, **kw)
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "afile").read_text() == "x" and (tmp_path / "full" / "keep.txt").exists()
    assert not list(tmp_path.glob(".*partial*")), "a refused call left a temporary tree"


def test_row59_synth_cli_error_is_status_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "brainllm_utils.synth", str(tmp_path / "x"), "--preset", "tiny",
                           "--seed", "-1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "seed=-1: expected an integer ≥ 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_row59_stale_partial_trees_are_cleaned_or_reported(tmp_path):
    root = tmp_path / "tiny"
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".tiny.partial-{host}-{dead.pid}-abc123"
    (stale / "nsddata").mkdir(parents=True)
    old = tmp_path / f".tiny.old-{dead.pid}-123"
    old.mkdir()
    live = tmp_path / f".tiny.partial-{host}-{os.getpid()}-zzz"  # this process: alive, left alone
    live.mkdir()
    foreign = tmp_path / ".tiny.partial-xyz"  # no host or pid: reported
    foreign.mkdir()
    with pytest.warns(UserWarning, match=r"temporary trees .*\.tiny\.partial-xyz"):
        make_synthetic_nsd(root, preset="tiny", seed=0)
    assert not stale.exists() and not old.exists()
    assert live.exists() and foreign.exists()
    assert (root / "nsddata").is_dir()


def test_row59_kill9_mid_generation_is_cleaned_by_the_next_run(tmp_path):
    root = tmp_path / "tiny"
    code = ("import time, brainllm_utils.synth._generate as g\n"
            "orig = g._commit\n"
            "def slow(partial, root):\n    time.sleep(300)\n"
            "g._commit = slow\n"
            f"g.make_synthetic_nsd({str(root)!r}, 'tiny', 0)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # the tree is complete in its partial folder, waiting to be renamed: kill it there
        assert _wait_for(lambda: any((p / "sandbox_truth").exists() for p in tmp_path.glob(".tiny.partial-*")))
    finally:
        proc.kill()
        proc.wait()
    assert list(tmp_path.glob(".tiny.partial-*")) and not root.exists()
    make_synthetic_nsd(root, preset="tiny", seed=0)
    assert not list(tmp_path.glob(".tiny.*")), "the killed run's temporary tree remains"
    assert (root / "nsddata").is_dir()


#: every case of this file, by id (the parametrised ones and the single tests, each named by its row)
CASES = ([c[0] for c in PARAM_CASES + GRID_CASES + ROOT_CASES + CLI_ARG_CASES + BOOL_CASES + RUN_OPTION_CASES
          + CLI_PROCESS_CASES + SYNTH_CASES] + RULE_CASES + PAIR_CASES
         + [f"row54-error-names-source-{s}" for s in SOURCE_CASES] + KILL_CASES + [c[0] for c in ROW57_CASES]
         + ["row52-every-invalid-value-listed", "row52-every-parameter-has-a-rule", "row54-set-data-home-beats-env",
            "row55-valid-scheduler-spellings", "row54-help-states-precedence",
            "row59-synth-cli-status-2", "row59-stale-partial-trees", "row59-kill9-mid-generation"])
