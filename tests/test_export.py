"""Exports: every writer's file read back by the tool a user would open it with (nibabel,
nilearn, pandas, rsatoolbox) equals the in-memory values; the manifest's checksums catch a
changed file; inputs that would write wrong files are refused."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainllm_utils import export
from brainllm_utils.chapters import table_checksum, values_checksum
from brainllm_utils.nsd import NSD


@pytest.fixture(scope="module")
def nsd(tiny_root):
    return NSD(tiny_root)


@pytest.fixture
def folder(tmp_path, nsd):
    return export.ExportFolder("02_rsa", parameters={"data_home": None, "seed": 3}, nsd=nsd,
                               results_dir=tmp_path)


def _surface(nsd, rng, dtype=np.float64):
    n = sum(nsd.n_vertices())
    values = rng.normal(size=n).astype(dtype)
    values[[0, n - 1]] = np.nan
    return values


# ----------------------------------------------------------------------------- surface maps
def test_surface_map_reads_back_in_nibabel_and_nilearn(folder, nsd, rng):
    from nilearn.surface import load_surf_data

    values = _surface(nsd, rng, np.float32)
    files = folder.surface_map("sl_r", values, description="searchlight r", units="Pearson r",
                               intent="NIFTI_INTENT_CORREL")
    assert sorted(f.name for f in files) == ["lh.sl_r.func.gii", "lh.sl_r.mgh",
                                             "rh.sl_r.func.gii", "rh.sl_r.mgh"]
    n_lh, n_rh = nsd.n_vertices()
    parts = {"lh": values[:n_lh], "rh": values[n_lh:]}
    for hemi, expected in parts.items():
        mgh = nib.load(folder.path / f"{hemi}.sl_r.mgh")
        assert isinstance(mgh, nib.MGHImage) and mgh.shape == (expected.size, 1, 1)
        np.testing.assert_array_equal(np.asarray(mgh.dataobj)[:, 0, 0], expected)
        # (nilearn's load_surf_data reads .mgz but not NSD's .mgh: nibabel is the MGH reader)
        gii = nib.load(folder.path / f"{hemi}.sl_r.func.gii")
        (da,) = gii.darrays
        np.testing.assert_array_equal(da.data, expected)
        assert da.meta["Name"] == "sl_r" and da.meta["Units"] == "Pearson r"
        assert nib.nifti1.intent_codes.label[da.intent] == "correlation"
        assert gii.meta["AnatomicalStructurePrimary"] == {"lh": "CortexLeft", "rh": "CortexRight"}[hemi]
        np.testing.assert_array_equal(load_surf_data(str(folder.path / f"{hemi}.sl_r.func.gii")),
                                      expected)


def test_float64_map_is_stored_as_float32_and_says_so(folder, nsd, rng):
    values = _surface(nsd, rng)
    folder.surface_map("m64", values, description="d")
    folder.close()
    entry = next(e for e in json.loads((folder.path / "manifest.json").read_text())["files"]
                 if e["file"] == "lh.m64.mgh")
    lh = values[:nsd.n_vertices()[0]]
    assert entry["source_dtype"] == "float64" and entry["dtype"] == "float32"
    assert entry["sha256_source"] == values_checksum(lh)
    assert entry["sha256"] == values_checksum(lh.astype(np.float32)) != entry["sha256_source"]
    err = np.nanmax(np.abs(lh.astype(np.float32).astype(np.float64) - lh))
    assert entry["max_abs_cast_error"] == pytest.approx(err) and 0 < err < 1e-6
    assert export.check_folder(folder.path) == []


@pytest.mark.parametrize("bad, match", [
    (lambda n: np.zeros(n + 1), "expected"),
    (lambda n: np.zeros((n, 1)), "expected"),
    (lambda n: np.array(["a"] * n), "real numbers"),
])
def test_surface_map_refuses_wrong_vertex_counts_and_types(folder, nsd, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        folder.surface_map("bad", bad(sum(nsd.n_vertices())), description="d")
    assert not list(folder.path.glob("*bad*"))


@pytest.mark.parametrize("name", ["../x", ".hidden", "a/b", "", "a b", "x" * 200, "a..b"])
def test_unsafe_names_are_refused(folder, nsd, name):
    with pytest.raises(ValueError, match="file-name-safe"):
        folder.surface_map(name, np.zeros(sum(nsd.n_vertices())), description="d")


def test_fsaverage_count_is_the_datasets(tmp_path):
    with pytest.raises(ValueError, match="163842 left"):
        export.export_surface_map(tmp_path, "m", np.zeros(20484), (163842, 163842), description="d")


# ----------------------------------------------------------------------------- volume maps
def test_volume_map_has_the_subjects_affine_and_reads_back(folder, nsd, tiny_root, rng):
    from nilearn.image import load_img

    ref = nib.load(tiny_root / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz")
    values = rng.normal(size=ref.shape).astype(np.float32)
    values[0, 0, 0] = np.nan
    (path,) = folder.volume_map("vol_r", values, subject=1, description="searchlight r")
    assert path.name == "vol_r.nii.gz"
    img = load_img(str(path))
    np.testing.assert_array_equal(img.affine, nsd.affine("subj01"))
    np.testing.assert_array_equal(img.affine, ref.affine)
    np.testing.assert_array_equal(img.header.get_zooms()[:3], ref.header.get_zooms()[:3])
    assert int(img.header["sform_code"]) == int(ref.header["sform_code"]) or ref.header["sform_code"] == 0
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), values)
    with pytest.raises(ValueError, match=r"subj01's func1pt8mm grid"):
        folder.volume_map("vol_bad", values[:-1], subject="subj01", description="d")


# ----------------------------------------------------------------------------- tables
def test_table_csv_and_parquet_keep_numbers_as_numbers(folder, rng):
    df = pd.DataFrame({"subject": ["subj01", "subj02", "subj01"], "roi": ["early", "ventral", "x"],
                       "r": [0.1234567890123, np.nan, -1e-12], "n": [3, 4, 5],
                       "significant": [True, False, True]}).set_index(["subject", "roi"])
    df.attrs = {"correction": "Holm", "table": pd.DataFrame({"a": [1]})}  # as some tables carry
    folder.table("rsa", df, description="ROI RSA per subject")
    noise = pd.DataFrame({"x": rng.normal(size=500) * 10.0 ** rng.integers(-30, 30, 500),
                          "x32": rng.normal(size=500).astype(np.float32)})
    folder.table("noise", noise, description="random floats over 60 decades")
    for reader, ext in ((pd.read_csv, "csv"), (pd.read_parquet, "parquet")):
        back = reader(folder.path / f"noise.{ext}")
        np.testing.assert_array_equal(back["x"].to_numpy(), noise["x"].to_numpy())
        np.testing.assert_array_equal(back["x32"].to_numpy(), noise["x32"].to_numpy())
    folder.close()
    assert export.check_folder(folder.path) == []
    flat = df.reset_index()
    for reader, ext in ((pd.read_csv, "csv"), (pd.read_parquet, "parquet")):
        back = reader(folder.path / f"rsa.{ext}")
        assert list(back.columns) == ["subject", "roi", "r", "n", "significant"]
        assert pd.api.types.is_float_dtype(back["r"]) and pd.api.types.is_integer_dtype(back["n"])
        assert pd.api.types.is_bool_dtype(back["significant"])
        np.testing.assert_array_equal(back["r"].to_numpy(), flat["r"].to_numpy())
        assert back["subject"].tolist() == flat["subject"].tolist()
    manifest = json.loads(folder.close().read_text())
    assert manifest["files"][0]["notes"] == {"correction": "Holm"}
    assert export.check_folder(folder.path) == []


def test_table_refuses_numbers_as_text(folder):
    with pytest.raises(ValueError, match="numbers stored as text"):
        folder.table("t", pd.DataFrame({"r": ["0.123", "1,000"]}), description="d")


def test_nan_from_zero_by_zero_reads_back_equal(folder):
    # 0/0 gives a NaN with the sign bit set on x86; the CSV and parquet readers give +NaN
    with np.errstate(invalid="ignore"):
        x = np.array([0.0, 1.0]) / np.array([0.0, 2.0])
    folder.table("nan", pd.DataFrame({"x": x}), description="d")
    folder.close()
    assert export.check_folder(folder.path) == []


def test_table_checksum_sees_one_changed_value():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    other = df.copy()
    other.loc[1, "a"] = 2.0 + 1e-15
    assert table_checksum(df) != table_checksum(other)
    assert table_checksum(df) == table_checksum(df.copy())


# ----------------------------------------------------------------------------- RDMs
def test_rdms_read_back_with_rsatoolbox(folder, rng):
    from rsatoolbox.rdm import load_rdm
    from scipy.spatial.distance import pdist

    ids = np.array([5, 17, 2, 40, 33])
    X = rng.normal(size=(3, ids.size, 8))
    d = np.stack([pdist(x, "correlation") for x in X])
    rdms = export.make_rdms(d, ids, subject="subj01", roi=["early", "ventral", ""],
                            model=["data", "data", "mpnet"])
    (path,) = folder.rdms("rdms_subj01", rdms, description="brain and model RDMs")
    back = load_rdm(str(path), file_type="hdf5")
    np.testing.assert_array_equal(back.dissimilarities, d)
    np.testing.assert_array_equal(back.pattern_descriptors["nsdId"], ids)
    assert list(back.rdm_descriptors["roi"]) == ["early", "ventral", ""]
    assert list(back.rdm_descriptors["model"]) == ["data", "data", "mpnet"]
    assert back.dissimilarity_measure == "correlation"
    with pytest.raises(ValueError, match="expected 10 for 5 images"):
        export.make_rdms(d[:, :-1], ids, subject="s", roi="r", model="m")
    with pytest.raises(ValueError, match="0-based"):
        export.make_rdms(d, ids - 10, subject="s", roi="r", model="m")


# ----------------------------------------------------------------------------- folder
def test_manifest_readme_and_check_catch_a_changed_file(folder, nsd, rng, tmp_path, capsys):
    folder.surface_map("m", _surface(nsd, rng, np.float32), description="d")
    folder.table("t", pd.DataFrame({"x": [1.5, 2.5]}), description="d")
    manifest = json.loads(folder.close().read_text())
    assert manifest["parameters"] == {"data_home": None, "seed": 3}
    assert manifest["data_root"] == str(nsd.root)
    assert {e["file"] for e in manifest["files"]} == {
        "lh.m.mgh", "rh.m.mgh", "lh.m.func.gii", "rh.m.func.gii", "t.csv", "t.parquet"}
    readme = (folder.path / "README.md").read_text()
    assert all(f"`{e['file']}`" in readme for e in manifest["files"])
    assert export.main(["check", str(tmp_path)]) == 0
    assert export.main(["list", str(tmp_path), "--chapter", "02_rsa"]) == 0
    assert "lh.m.func.gii" in capsys.readouterr().out
    # a changed value in one file is found
    pd.DataFrame({"x": [1.5, 2.6]}).to_csv(folder.path / "t.csv", index=False)
    problems = export.check_folder(folder.path)
    assert len(problems) == 1 and "t.csv" in problems[0] and "checksum" in problems[0]
    assert export.main(["check", str(tmp_path)]) == 1
    assert "t.csv" in capsys.readouterr().out
    # a new run removes the files the previous manifest listed
    again = export.ExportFolder("02_rsa", nsd=nsd, results_dir=tmp_path)
    assert not (again.path / "t.csv").exists() and not (again.path / "manifest.json").exists()


def test_download_markdown_links_relative_to_the_page(folder, tmp_path):
    folder.table("t", pd.DataFrame({"x": [1.0]}), description="d")
    folder.close()
    page_dir = tmp_path / "site" / "book" / "notebooks"
    md = export.download_markdown(folder.path, page_dir)
    assert "{download}`t.csv <../../../02_rsa/t.csv>`" in md
    assert "{download}`manifest.json <../../../02_rsa/manifest.json>`" in md
    assert "{download}" not in export.download_markdown(folder.path, None)


def test_findings_table_has_numeric_columns(tmp_path):
    from brainllm_utils.chapters import findings

    rows = [findings.finding("RQ1", "a", 0.48312, expected="x", agrees=True),
            findings.finding("RQ1", "b", "0 of 20 vertices", agrees=None)]
    rows[0]["values"] = [{"quantity": "rsa", "model": "mpnet", "roi": "ventral", "value": 0.25,
                          "measure": "r"}]
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"chapter": "02_rsa", "run": "02_rsa",
                                "rows": [dict(r, chapter="02_rsa") for r in rows]}))
    df = export.findings_table(path)
    assert df["recovered_value"].tolist()[0] == 0.483 and np.isnan(df["recovered_value"].iloc[1])
    assert df["value"].iloc[0] == 0.25 and df["agrees"].dtype == "boolean"
    assert pd.isna(df["agrees"].iloc[1])


def test_chapter_names_are_checked(tmp_path):
    with pytest.raises(ValueError, match="chapter"):
        export.results_folder("../etc", tmp_path)
    with pytest.raises(ValueError, match="findings"):
        export.results_folder("findings", tmp_path)


def test_subject_rdms_match_rsatoolbox_on_the_same_patterns(nsd):
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    from brainllm_utils.chapters import roi_patterns, subject_image_ids

    ids = subject_image_ids(nsd, "subj01")[:12][::-1].copy()  # unsorted on purpose
    rng = np.random.default_rng(0)
    feats = {"a": rng.normal(size=(40, 6)), "b": rng.normal(size=(40, 3))}
    feature_ids = np.unique(np.concatenate([ids, subject_image_ids(nsd, "subj01")[12:40]]))[:40]
    rdms = export.sample_set_rdms(nsd, "subj01", ids, feats, feature_ids, rois=["early", "ventral"],
                               device="cpu")
    assert list(rdms.rdm_descriptors["model"]) == ["data", "data", "a", "b"]
    assert list(rdms.rdm_descriptors["roi"]) == ["early", "ventral", "", ""]
    np.testing.assert_array_equal(rdms.pattern_descriptors["nsdId"], ids)
    X = roi_patterns(nsd, "subj01", ["ventral"], ids=np.sort(ids))[0]["ventral"]
    X = X[np.searchsorted(np.sort(ids), ids)]
    ref = calc_rdm(Dataset(X.astype(np.float64)), method="correlation").dissimilarities[0]
    np.testing.assert_allclose(rdms.dissimilarities[1], ref, atol=1e-6)
    rows = np.searchsorted(feature_ids, ids)
    ref = calc_rdm(Dataset(feats["b"][rows]), method="correlation").dissimilarities[0]
    np.testing.assert_allclose(rdms.dissimilarities[3], ref, atol=1e-10)


def test_safe_name():
    assert export.safe_name("sbert:all-MiniLM-L6-v2") == "sbert-all-MiniLM-L6-v2"
    assert export.safe_name("../x") == "-x"


def test_partial_data_is_recorded_in_the_manifest_and_on_the_page(tree_copy, tmp_path):
    """Data the reader left out (here a subject whose betas are gone) is written to the
    manifest, to ``partial_data.csv`` and to the README, and the page shows a warning."""
    import shutil
    import warnings

    import pandas as pd

    from brainllm_utils.nsd import PartialDataWarning

    root = tree_copy()
    shutil.rmtree(root / "nsddata_betas" / "ppdata" / "subj03")
    nsd = NSD(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDataWarning)
        assert "subj03" not in nsd.subjects
    out = export.ExportFolder("00_data_tour", nsd=nsd, results_dir=tmp_path / "results")
    out.table("scores", pd.DataFrame({"r": [0.5]}), description="a table")
    out.close()
    manifest = json.loads((out.path / "manifest.json").read_text())
    assert [e["kind"] for e in manifest["partial_data"]] == ["subject-without-betas"]
    assert "partial_data.csv" in {e["file"] for e in manifest["files"]}
    assert "subj03" in pd.read_csv(out.path / "partial_data.csv")["subject"].tolist()
    assert "subj03" in (out.path / "README.md").read_text().split("## Data left out")[1]
    page = export.download_markdown(out.path, tmp_path)
    assert page.startswith("````{warning}") and "subj03" in page
    assert export.check_folder(out.path) == []


def test_a_complete_run_records_no_partial_data(nsd, tmp_path):
    out = export.ExportFolder("00_data_tour", nsd=nsd, results_dir=tmp_path)
    out.close()
    manifest = json.loads((out.path / "manifest.json").read_text())
    assert manifest["partial_data"] == []
    assert "{warning}" not in export.download_markdown(out.path, tmp_path)
    assert "Nothing:" in (out.path / "README.md").read_text()
