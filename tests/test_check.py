"""``brainllm_utils.nsd check``: damaged, incomplete and NSD-sized roots are reported correctly."""

from __future__ import annotations

import argparse
import json

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainllm_utils.nsd import _check
from brainllm_utils.nsd._check import CHAPTERS, NSD_FACTS, check, estimate_resources, SubjectSize
from brainllm_utils.nsd.layout import ANNOTATIONS, STIM_INFO, STIMULI, beta_dir, responses_file

from conftest import replace_file

VOL1 = beta_dir("subj01", "func1pt8mm")
FS1 = beta_dir("subj01", "fsaverage")
FS2 = beta_dir("subj02", "fsaverage")


def _errors(report):
    return [(f.check, f.file) for f in report.errors]


def _error_files(report):
    return {f.file for f in report.errors}


@pytest.fixture(scope="module")
def clean_report(tiny_root):
    return check(tiny_root, profile="smoke")


# ------------------------------------------------------------------------------- clean sandbox
def test_clean_sandbox_passes_and_nsd_facts_are_skipped(clean_report, tiny_root):
    r = clean_report
    assert r.usable and r.exit_code == 0, r.format()
    assert not r.nsd_sized
    facts = [f for f in r.findings if f.group == "nsd facts"]
    assert [f.level for f in facts] == ["skipped"]
    assert "not NSD-sized" in facts[0].message
    assert "not NSD-sized" in r.format()
    assert set(r.subjects) == {"subj01", "subj02", "subj03"}
    assert r.subjects["subj03"] == {"fsaverage": [1, 2], "func1pt8mm": [1, 2]}
    # the consistency checks ran (and passed), they were not skipped
    checks = {f.check for f in r.findings if f.group == "consistency" and f.level == "ok"}
    for name in ("trials per session", "images seen three times", "shared images", "CSV rows vs design",
                 "imgBrick images vs CSV", "vertex count", "volume grid", "responses.tsv vs design",
                 "shared test images"):
        assert name in checks, name
    assert [c.chapter for c in r.chapters][: len(CHAPTERS)] == list(CHAPTERS)
    assert all(c.runnable for c in r.chapters), [c for c in r.chapters if not c.runnable]


# ------------------------------------------------------------------------------- damage
def test_truncated_beta_files_are_errors_naming_the_file(tree_copy):
    root = tree_copy()
    gz = root / VOL1 / "betas_session02.nii.gz"
    data = gz.read_bytes()
    replace_file(gz, data[: len(data) * 2 // 3])
    mgh = root / FS1 / "rh.betas_session03.mgh"
    replace_file(mgh, mgh.read_bytes()[:-4096])
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    files = _error_files(r)
    assert f"{VOL1}/betas_session02.nii.gz" in files
    assert f"{FS1}/rh.betas_session03.mgh" in files
    msg = {f.file: f.message for f in r.errors}
    assert "truncated" in msg[f"{FS1}/rh.betas_session03.mgh"]
    assert "truncated" in msg[f"{VOL1}/betas_session02.nii.gz"]
    # the chapters reading them are not runnable, and say why
    status = {c.chapter: c for c in r.chapters}
    assert f"{FS1}/rh.betas_session03.mgh" in status["03_encoding"].damaged
    assert not status["03_encoding"].runnable and not status["03_encoding"].missing
    assert f"{VOL1}/betas_session02.nii.gz" in status["02_rsa"].damaged
    assert status["01_feature_spaces"].runnable  # reads no betas
    assert "damaged" in r.format()


def test_a_gzip_whose_trailer_lies_is_decompressed_to_the_end(tree_copy):
    """A valid file written as two gzip members (trailer ISIZE = last member only) passes."""
    import gzip

    root = tree_copy()
    gz = root / VOL1 / "betas_session01.nii.gz"
    raw = gzip.decompress(gz.read_bytes())
    replace_file(gz, gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    assert nib.load(gz).shape[-1] == 60
    r = check(root, profile="smoke")
    assert r.usable, r.format()


def test_missing_session_in_the_middle(tree_copy):
    root = tree_copy()
    for rel in (f"{FS1}/lh.betas_session02.mgh", f"{FS1}/rh.betas_session02.mgh", f"{VOL1}/betas_session02.nii.gz"):
        (root / rel).unlink()
    r = check(root, profile="smoke")
    # the reader analyses the sessions on disk, holes allowed (NSD.sessions): a warning
    assert r.exit_code == 0, r.format()
    assert not [f for f in r.errors if f.check == "sessions on disk"]
    gap = [f for f in r.warnings if f.check == "sessions on disk"]
    assert {f.file for f in gap} == {f"{FS1}/lh.betas_session02.mgh", f"{VOL1}/betas_session02.nii.gz"}
    assert all("session 2" in f.message and "uses the sessions on disk" in f.message for f in gap)
    assert r.subjects["subj01"]["fsaverage"] == [1, 3]


def test_missing_last_session_is_a_warning_not_an_error(tree_copy):
    root = tree_copy()
    for rel in (f"{FS1}/lh.betas_session03.mgh", f"{FS1}/rh.betas_session03.mgh", f"{VOL1}/betas_session03.nii.gz"):
        (root / rel).unlink()
    r = check(root, profile="smoke")
    assert r.usable, r.format()
    warn = [f for f in r.warnings if f.check == "sessions vs responses.tsv"]
    assert len(warn) == 2 and all(f.file == responses_file("subj01") for f in warn)
    assert "lists 3 sessions, fsaverage has sessions 1-2 on disk" in warn[0].message


def _rewrite_mgh(path, data):
    img = nib.MGHImage(data.astype(np.float32), np.eye(4))
    path.unlink()
    nib.save(img, path)


def test_beta_file_with_the_wrong_trial_count(tree_copy):
    root = tree_copy()
    p = root / FS2 / "lh.betas_session02.mgh"
    data = np.asarray(nib.load(p).dataobj)
    _rewrite_mgh(p, data[..., :59])
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    bad = [f for f in r.errors if f.check == "trials per session"]
    assert [f.file for f in bad] == [f"{FS2}/lh.betas_session02.mgh"]
    assert "59 trials, expected 60" in bad[0].message


def test_lh_rh_vertex_mismatch(tree_copy):
    root = tree_copy()
    p = root / FS1 / "rh.betas_session01.mgh"
    data = np.asarray(nib.load(p).dataobj)
    _rewrite_mgh(p, data[:-10])
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    bad = [f for f in r.errors if f.check == "vertex count"]
    assert [f.file for f in bad] == [f"{FS1}/rh.betas_session01.mgh"]
    assert "10232" in bad[0].message and "10242" in bad[0].message


def test_every_rh_file_differing_from_lh_is_reported(tree_copy):
    """When the whole right hemisphere disagrees with the left, the mismatch is still an error."""
    root = tree_copy()
    for p in sorted(root.rglob("rh.*.mg[hz]")):
        img = nib.load(p)
        data = np.asarray(img.dataobj)[:-2]
        p.unlink()
        nib.save(type(img)(data, np.eye(4)), p)
    r = check(root, profile="smoke")
    assert any(f.check == "vertex count" and "lh files have 10242 vertices, rh files 10240" in f.message
               for f in r.errors), r.format()


def test_wrong_shape_roi_volume(tree_copy):
    root = tree_copy()
    rel = "nsddata/ppdata/subj01/func1pt8mm/roi/streams.nii.gz"
    p = root / rel
    img = nib.load(p)
    data = np.asarray(img.dataobj)[:, :, :-1]
    p.unlink()
    nib.save(nib.Nifti1Image(data, img.affine, img.header), p)
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    bad = [f for f in r.errors if f.check == "volume grid"]
    assert [f.file for f in bad] == [rel]
    assert "(10, 12, 8)" in bad[0].message and "(10, 12, 9)" in bad[0].message


def test_volume_with_another_affine(tree_copy):
    root = tree_copy()
    rel = "nsddata/ppdata/subj02/func1pt8mm/brainmask.nii.gz"
    p = root / rel
    img = nib.load(p)
    aff = img.affine.copy()
    aff[0, 3] += 1.8
    data = np.asarray(img.dataobj)
    p.unlink()
    nib.save(nib.Nifti1Image(data, aff, img.header), p)
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    # every other volume of subj02 now differs from the mask's affine
    bad = {f.file for f in r.errors if f.check == "volume affine"}
    assert f"{beta_dir('subj02', 'func1pt8mm')}/betas_session01.nii.gz" in bad


def test_responses_disagreeing_with_the_design(tree_copy):
    root = tree_copy()
    rel = responses_file("subj02")
    p = root / rel
    df = pd.read_csv(p, sep="\t")
    df.loc[5, "73KID"] = df.loc[5, "73KID"] % 396 + 1
    p.unlink()
    df.to_csv(p, sep="\t", index=False)
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    assert ("responses.tsv vs design", rel) in _errors(r)


def test_csv_with_a_row_missing(tree_copy):
    root = tree_copy()
    p = root / STIM_INFO
    lines = p.read_bytes().splitlines(keepends=True)
    replace_file(p, b"".join(lines[:-1]))
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    bad = [f for f in r.errors if f.file == STIM_INFO]
    assert any("395 rows, the design has 396 images" in f.message for f in bad), bad
    # a row missing in the middle breaks the nsdId order: also an error on the CSV
    lines2 = lines[:100] + lines[101:]
    replace_file(p, b"".join(lines2))
    r = check(root, profile="smoke")
    assert STIM_INFO in _error_files(r)


def test_imgbrick_with_the_wrong_number_of_images(tree_copy):
    root = tree_copy()
    p = root / STIMULI
    with h5py.File(p, "r") as f:
        brick = f["imgBrick"][:-3]
    p.unlink()
    with h5py.File(p, "w") as f:
        f.create_dataset("imgBrick", data=brick)
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    bad = [f for f in r.errors if f.file == STIMULI]
    assert bad and "393 images" in bad[0].message


def test_truncated_hdf5_is_an_error(tree_copy):
    root = tree_copy()
    p = root / STIMULI
    data = p.read_bytes()
    replace_file(p, data[: len(data) // 2])
    r = check(root, profile="smoke")
    assert STIMULI in _error_files(r)


def test_truncated_annotations_are_an_error(tree_copy):
    root = tree_copy()
    rel = f"{ANNOTATIONS}/captions_train2017.json"
    p = root / rel
    replace_file(p, p.read_bytes()[:-100])
    r = check(root, profile="smoke")
    assert rel in _error_files(r)


# ------------------------------------------------------------------------------- incomplete roots
def _required_chapters(root, relpath_pred, subjects_sessions):
    """Chapters that, by the manifest, need a file matching ``relpath_pred``."""
    from brainllm_utils.nsd._manifest import book_files

    out = set()
    for s, sess in subjects_sessions.items():
        for bf in book_files([s], sess, coco_images=True):
            if bf.required and relpath_pred(bf.relpath):
                out |= set(bf.chapters)
    return out


def test_annotations_missing_make_their_chapters_unrunnable(tree_copy):
    import shutil

    root = tree_copy()
    shutil.rmtree(root / ANNOTATIONS)
    r = check(root, profile="smoke")
    need = _required_chapters(root, lambda p: p.startswith(ANNOTATIONS), {1: [1, 2, 3], 2: [1, 2, 3], 3: [1, 2]})
    assert "01_feature_spaces" in need  # captions: the manifest must list them
    blocked = {c.chapter for c in r.chapters if not c.runnable}
    assert blocked == need
    for c in r.chapters:
        if not c.runnable:
            assert any(m.startswith(ANNOTATIONS) for m in c.missing)
            assert "python -m brainllm_utils.nsd download" in c.hint
    assert "missing" in r.format() and "get it with" in r.format()


def test_one_subject_fsaverage_only(tree_copy):
    import shutil

    root = tree_copy()
    for s in ("subj02", "subj03"):
        shutil.rmtree(root / "nsddata_betas" / "ppdata" / s)
    shutil.rmtree(root / VOL1)
    r = check(root, profile="smoke")
    assert list(r.subjects) == ["subj01"]
    assert any(f.check == "subjects" and f.level == "warning" and "≥ 2 subjects" in f.message for f in r.findings)
    need_vol = _required_chapters(root, lambda p: "/func1pt8mm/" in p and "betas_session" in p, {1: [1, 2, 3]})
    blocked = {c.chapter for c in r.chapters if not c.runnable}
    assert blocked == need_vol
    for c in r.chapters:
        assert c.runnable == (c.chapter not in need_vol)
        if not c.runnable:
            assert "--subjects 1" in c.hint and "--sessions 1-3" in c.hint


# ------------------------------------------------------------------------------- NSD facts
def _tiny_facts(tiny_root):
    """NSD_FACTS rewritten with the tiny sandbox's sizes: the tiny root is then 'NSD-sized'."""
    from brainllm_utils.nsd import NSD

    nsd = NSD(tiny_root)
    summary = nsd.summary()
    sessions = {int(s[4:]): int(n) for s, n in summary["sessions"].items()}
    return {
        "n_images": 396, "image_shape": (32, 32, 3), "masterordering": 180, "subjectim": (8, 60),
        "sharedix": 12, "sessions": sessions, "trials_per_session": 60, "n_test": 8, "n_vertices": 10242,
        "voxel_mm": 1.8, "grids": {1: (10, 12, 9), 2: (11, 11, 9), 3: (10, 12, 10)},
        "images_3x": {int(s[4:]): int(n) for s, n in summary["images_3x"].items()},
    }


def _not_a_sandbox(tree_copy):
    root = tree_copy()
    (root / "sandbox_truth" / "card.json").unlink()
    return root


def test_a_sandbox_at_nsd_size_is_still_not_nsd(tiny_root, monkeypatch):
    monkeypatch.setattr(_check, "NSD_FACTS", _tiny_facts(tiny_root))
    r = check(tiny_root, profile="smoke")
    assert r.sandbox and not r.nsd_sized and r.usable
    facts = [f for f in r.findings if f.group == "nsd facts"]
    assert [f.level for f in facts] == ["skipped"] and "generated sandbox" in facts[0].message


def test_nsd_facts_pass_on_a_root_matching_them(tiny_root, tree_copy, monkeypatch):
    monkeypatch.setattr(_check, "NSD_FACTS", _tiny_facts(tiny_root))
    r = check(_not_a_sandbox(tree_copy), profile="smoke")
    assert not r.sandbox
    assert r.nsd_sized and r.usable, r.format()
    facts = [f for f in r.findings if f.group == "nsd facts"]
    assert len(facts) > 10 and all(f.level == "ok" for f in facts), [f for f in facts if f.level != "ok"]
    assert "NSD facts checked" in r.format()


def test_nsd_facts_can_fail(tiny_root, tree_copy, monkeypatch):
    facts = _tiny_facts(tiny_root)
    facts.update(trials_per_session=750, n_vertices=163842, n_test=515,
                 grids={**facts["grids"], 1: (81, 104, 83)}, sessions={**facts["sessions"], 3: 1},
                 images_3x={**facts["images_3x"], 2: 10000}, voxel_mm=2.0)
    monkeypatch.setattr(_check, "NSD_FACTS", facts)
    r = check(_not_a_sandbox(tree_copy), profile="smoke")
    bad = {f.check for f in r.errors if f.group == "nsd facts"}
    assert {"trials per session", "fsaverage vertices (lh)", "fsaverage vertices (rh)", "1.8 mm grid (subj01)",
            "sessions (subj03 fsaverage)", "images seen 3× (subj02)"} <= bad, r.format()
    # 515: the sessions differ from NSD's, so the test-set size is a warning with its reason
    assert any(f.check == "shared test images" and f.group == "nsd facts" for f in r.warnings)
    # the affine formula (nsdcode's writer, not checked on released files) only warns
    assert {f"1.8 mm affine (subj0{s})" for s in (1, 2, 3)} <= {f.check for f in r.warnings}
    # internal consistency is untouched
    assert not [f for f in r.errors if f.group != "nsd facts"]


def test_the_real_facts_table_is_nsds():
    assert NSD_FACTS["sessions"] == {1: 40, 2: 40, 3: 32, 4: 30, 5: 40, 6: 32, 7: 40, 8: 30}
    assert sum(NSD_FACTS["sessions"].values()) * NSD_FACTS["trials_per_session"] == 213000
    assert NSD_FACTS["grids"][1] == (81, 104, 83)


# ------------------------------------------------------------------------------- resources
def test_estimate_resources_formulas():
    sub = SubjectSize("subj01", n_images=10000, n_sessions=40, trials_per_session=750,
                      columns={"fsaverage": 327684}, beta_bytes={"fsaverage": 40 * 983_052_000})
    est = estimate_resources([sub], profile="paper", ram_bytes=64 * 10**9, cpus=16, gpu=True, chunk_columns=65536)
    assert est.cache_bytes == 10000 * 327684 * 4  # 13.1 GB, the figure
    work = max(750 * 327684 * 4, 3 * 10000 * 65536 * 4)
    assert est.peak_bytes["03_encoding"] == int(1.0e9 + work)
    assert est.workers == int(0.8 * 64e9 // max(est.peak_bytes.values()))
    assert est.time_s["00_data_tour"] > 40 * 983_052_000 / 125e6  # at least the reading
    # fewer columns per chunk: less memory
    small = estimate_resources([sub], profile="paper", ram_bytes=64 * 10**9, cpus=16, chunk_columns=8192)
    assert max(small.peak_bytes.values()) < max(est.peak_bytes.values())
    with pytest.raises(ValueError, match="profile"):
        estimate_resources([sub], profile="huge")
    with pytest.raises(ValueError, match="workers"):
        estimate_resources([sub], workers=0)


def test_resources_in_the_report(clean_report):
    res = clean_report.resources
    assert res is not None and res.workers >= 1
    assert res.data_bytes > 0 and res.cache_bytes > 0
    assert set(res.peak_bytes) == set(CHAPTERS)
    assert "rough estimate" in clean_report.format()


def test_bad_arguments(tiny_root, tmp_path):
    with pytest.raises(ValueError, match="profile"):
        check(tiny_root, profile="fast")
    with pytest.raises(ValueError, match="workers"):
        check(tiny_root, workers=0)
    with pytest.raises(ValueError, match="memory_gb"):
        check(tiny_root, memory_gb=-1)
    r = check(tmp_path / "nowhere")
    assert r.exit_code == 1 and r.errors[0].check == "root"


# ------------------------------------------------------------------------------- command line
def _cli(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    _check.add_arguments(sub.add_parser("check"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_exit_codes_and_json(tiny_root, tree_copy, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert _cli(["check", str(tiny_root), "--profile", "smoke", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "USABLE" in text and "not NSD-sized" in text
    data = json.loads(out.read_text())
    assert data["exit_code"] == 0 and data["usable"] and data["nsd_sized"] is False
    assert data["counts"]["error"] == 0
    assert {c["chapter"] for c in data["chapters"]} >= set(CHAPTERS)
    root = tree_copy()
    p = root / FS1 / "lh.betas_session01.mgh"
    replace_file(p, p.read_bytes()[:1000])
    out2 = tmp_path / "damaged.json"
    assert _cli(["check", str(root), "--json", str(out2), "--memory-gb", "16"]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    data = json.loads(out2.read_text())
    assert data["exit_code"] == 1
    assert any(f["level"] == "error" and f["file"] == f"{FS1}/lh.betas_session01.mgh" for f in data["findings"])
    assert data["resources"]["ram_bytes"] == 16 * 10**9
    assert _cli(["check", str(tiny_root), "--workers", "0"]) == 2
    assert "workers=0" in capsys.readouterr().err


def test_gzip_size_reads_only_the_trailer_when_it_matches(tiny_root, monkeypatch):
    import gzip

    p = tiny_root / VOL1 / "betas_session01.nii.gz"
    img = nib.load(p)
    need = int(img.dataobj.offset) + int(np.prod(img.shape)) * 2
    assert _check._gzip_size(p, need) == (need, None)

    def refuse(*a, **k):
        raise AssertionError("decompressed although the trailer matched")

    monkeypatch.setattr(gzip, "open", refuse)
    assert _check._gzip_size(p, need) == (need, None)
    assert _check._image_completeness(p, img) is None  # check() itself takes the fast path
    with pytest.raises(AssertionError, match="decompressed"):
        _check._gzip_size(p, need + 1)  # a mismatch falls back to decompressing


def test_module_command_line(tiny_root, tmp_path):
    """``python -m brainllm_utils.nsd check ROOT`` end to end, in a fresh process."""
    import subprocess
    import sys

    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "brainllm_utils.nsd", "check", str(tiny_root), "--profile",
                           "smoke", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verdict: USABLE" in proc.stdout and "[chapters]" in proc.stdout
    assert json.loads(out.read_text())["usable"] is True
    proc = subprocess.run([sys.executable, "-m", "brainllm_utils.nsd", "check", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "DAMAGED" in proc.stdout


def test_empty_root_lists_everything_missing(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    r = check(root, profile="smoke")
    assert r.exit_code == 1
    assert {"nsddata/experiments/nsd/nsd_expdesign.mat", STIM_INFO} <= _error_files(r)
    assert not any(c.runnable for c in r.chapters)
    assert all("--subjects 1 --sessions 1" in c.hint for c in r.chapters)


def test_gaps_and_foreign_subjects(tree_copy):
    import os
    import shutil

    root = tree_copy()
    for h in ("lh", "rh"):
        os.link(root / FS1 / f"{h}.betas_session01.mgh", root / FS1 / f"{h}.betas_session07.mgh")
    shutil.copytree(root / "nsddata_betas/ppdata/subj02", root / "nsddata_betas/ppdata/subj09",
                    copy_function=os.link)
    r = check(root, profile="smoke")
    gap = [f for f in r.warnings if f.check == "sessions on disk"]
    assert len(gap) == 1 and "sessions 4-6 missing" in gap[0].message
    assert gap[0].file == f"{FS1}/lh.betas_session04.mgh"
    assert ("subjects", "nsddata_betas/ppdata/subj09") in _errors(r)
    # betas beyond responses.tsv are ignored by the reader: a warning
    assert any(f.check == "sessions vs responses.tsv" and "7 sessions on disk" in f.message for f in r.warnings)
