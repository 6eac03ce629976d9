"""The file list of the book (``nsd.book_files``) and the downloader, against local servers.

An S3 server (moto's server mode, on loopback) is seeded with the tiny sandbox's files under
their NSD keys; a plain threaded HTTP server with Range support serves COCO-style zips built
from the sandbox's annotations and pool images. Nothing touches the internet.
"""

from __future__ import annotations

import ast
import hashlib
import http.server
import io
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
import zipfile
from pathlib import Path

import pytest

from brainllm_utils import nsd
from brainllm_utils.nsd import _download, _manifest
from brainllm_utils.nsd.__main__ import main
from brainllm_utils.nsd.layout import ANNOTATIONS, COCO_DIR, NSD_SESSIONS, STIM_INFO

BUCKET = "natural-scenes-dataset"
REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- servers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_client(url):
    import boto3

    return boto3.client("s3", endpoint_url=url, region_name="us-east-2",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


#: Files of the selection that the tiny sandbox lacks (it uses nilearn's fsaverage5 mesh):
#: uploaded as deterministic bytes so that the bucket has every required key.
_EXTRA = {
    "nsddata/freesurfer/fsaverage/surf/lh.pial": 70_001,
    "nsddata/freesurfer/fsaverage/surf/rh.pial": 70_003,
}
#: An optional file of the selection kept out of the bucket (the tiny sandbox has every
#: transform file): the downloader must skip it with a warning, not fail.
_ABSENT = {"nsddata/ppdata/subj01/transforms/rh.func1pt8-to-layerB3.mgz"}
#: Uploaded without a public ACL: anonymous reads get 403.
_PRIVATE = "nsddata/ppdata/subj03/behav/responses.tsv"


def _extra_bytes(key: str, n: int) -> bytes:
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{key}{i}".encode()).digest()
        i += 1
    return out[:n]


@pytest.fixture(scope="module")
def s3_url(tiny_root):
    """A moto S3 server on loopback holding the tiny sandbox under NSD's keys (public-read)."""
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        pytest.fail(f"{exe} is missing: moto[server] is pinned in requirements.txt")
    port = _free_port()
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("moto_server exited at start")
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not answer within 30 s")
        c = _seed_client(url)
        c.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        for p in sorted(tiny_root.rglob("*")):
            rel = p.relative_to(tiny_root).as_posix()
            if p.is_file() and not rel.startswith(("coco/", "sandbox_truth/", ANNOTATIONS)) and rel not in _ABSENT:
                acl = {} if rel == _PRIVATE else {"ACL": "public-read"}
                c.put_object(Bucket=BUCKET, Key=rel, Body=p.read_bytes(), **acl)
        for key, n in _EXTRA.items():
            c.put_object(Bucket=BUCKET, Key=key, Body=_extra_bytes(key, n), ACL="public-read")
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []

    def log_message(self, *args):  # quiet
        pass

    def _head(self):
        data = self.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return None, None
        rng = self.headers.get("Range")
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-Range") not in (None, etag):
            rng = None  # RFC 9110: a changed resource is sent whole
        self.log.append((self.command, self.path, rng))
        start = 0
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.end_headers()
        return data, start

    def do_HEAD(self):
        self._head()

    def do_GET(self):
        data, start = self._head()
        if data is not None:
            self.wfile.write(data[start:])


def _zip_bytes(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def nsd_coco_id(tiny_root):
    import pandas as pd

    return int(pd.read_csv(tiny_root / STIM_INFO, usecols=["cocoId"])["cocoId"].iloc[0])


@pytest.fixture(scope="module")
def coco_server(tiny_root, nsd_coco_id):
    """A threaded HTTP server (with Range) serving COCO-style zips built from the sandbox."""
    ann = tiny_root / ANNOTATIONS
    files = {
        "annotations/annotations_trainval2017.zip": _zip_bytes(
            {f"annotations/{p.name}": p.read_bytes() for p in sorted(ann.glob("*.json"))}
            | {"annotations/person_keypoints_val2017.json": b"{}"}),
    }
    for split in ("train2017", "val2017"):
        members = {f"{split}/{p.name}": p.read_bytes() for p in sorted((tiny_root / COCO_DIR / split).glob("*.jpg"))}
        if split == "train2017":  # an NSD image in the zip: not part of the training pool
            members[f"train2017/{nsd_coco_id:012d}.jpg"] = b"nsd image, not for the pool"
        files[f"zips/{split}.zip"] = _zip_bytes(members)
    handler = type("Handler", (_RangeHandler,), {"files": files, "log": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


def _get(root, s3_url, coco_server, subjects=(1,), sessions="1-2", **kw):
    kw.setdefault("progress", False)
    kw.setdefault("workers", 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optional transforms missing from the bucket
        return nsd.download(root, subjects, sessions, endpoint_url=s3_url, coco_url=coco_server[0], **kw)


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not p.relative_to(root).as_posix().startswith(_download.ZIP_DIR)}


def _expected_s3(tiny_root, selection) -> dict[str, Path]:
    return {f.relpath: (tiny_root / f.relpath) for f in selection if f.source == "s3" and f.relpath not in _ABSENT
            and ((tiny_root / f.relpath).is_file() or f.relpath in _EXTRA)}


def _same(root: Path, rel: str, tiny_root: Path) -> bool:
    want = (_extra_bytes(rel, _EXTRA[rel]) if rel in _EXTRA else (tiny_root / rel).read_bytes())
    return (root / rel).read_bytes() == want


# ----------------------------------------------------------------------------- book_files
def test_book_files_betas_are_exactly_the_sessions_asked():
    with pytest.warns(UserWarning, match="clipped"):
        files = nsd.book_files([1, "subj04"], "2-3,31", spaces=("fsaverage", "func1pt8mm"), volume=False)
    got = {f.relpath for f in files}
    betas = {r for r in got if "betas_session" in r}
    want = set()
    for name, sessions in (("subj01", (2, 3, 31)), ("subj04", (2, 3))):  # subj04 has 30
        for s in sessions:
            want |= {f"nsddata_betas/ppdata/{name}/fsaverage/betas_fithrf_GLMdenoise_RR/{h}.betas_session{s:02d}.mgh"
                     for h in ("lh", "rh")}
            want.add(f"nsddata_betas/ppdata/{name}/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session{s:02d}.nii.gz")
    assert betas == want
    assert len(got) == len(files)  # unique
    assert not any("/transforms/" in r for r in got)
    assert "nsddata/freesurfer/fsaverage/surf/lh.pial" in got


def test_book_files_default_sessions_follow_each_subject():
    files = nsd.book_files(range(1, 9), volume=False)
    for s, n in NSD_SESSIONS.items():
        lh = [f for f in files if f.relpath.startswith(f"nsddata_betas/ppdata/subj{s:02d}/")
              and ".betas_session" in f.relpath and "/lh." in f.relpath]
        assert len(lh) == n
    assert sum("betas_session" in f.relpath for f in files) == 2 * 284  # 284 sessions in NSD


def test_book_files_volume_extras():
    fs = {f.relpath: f for f in nsd.book_files([2], 1)}
    d = "nsddata_betas/ppdata/subj02/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    assert fs[f"{d}/betas_session01.nii.gz"].required
    assert fs["nsddata/ppdata/subj02/func1pt8mm/brainmask.nii.gz"].required
    assert not fs["nsddata/ppdata/subj02/func1pt8mm/roi/streams.nii.gz"].required
    for h in ("lh", "rh"):
        for t in ("func1pt8-to-layerB1", "func1pt8-to-layerB2", "func1pt8-to-layerB3", "white-to-fsaverage"):
            f = fs[f"nsddata/ppdata/subj02/transforms/{h}.{t}.mgz"]
            assert not f.required and f.chapters == ("02_rsa", "05_image_to_llm")
    assert f"{d}/betas_session02.nii.gz" not in fs
    coco = [f for f in fs.values() if f.source == "coco"]
    assert sorted(Path(f.relpath).name for f in coco) == sorted(
        f"{k}_{s}2017.json" for k in ("captions", "instances") for s in ("train", "val"))
    with_images = nsd.book_files([2], 1, coco_images=True)
    assert {f.relpath for f in with_images} - set(fs) == {"coco/train2017/", "coco/val2017/"}


def test_book_files_clips_sessions_per_subject_with_a_note():
    with pytest.warns(UserWarning, match="subj04 has 30"):
        files = nsd.book_files([1, 4], [29, 40])
    assert any("subj01/fsaverage" in f.relpath and "session40" in f.relpath for f in files)
    assert any("subj04/fsaverage" in f.relpath and "session29" in f.relpath for f in files)
    assert not any("subj04" in f.relpath and "session40" in f.relpath for f in files)
    with pytest.raises(ValueError, match="sessions.*subj04 has only 30"):
        nsd.book_files([4], "31-32")


@pytest.mark.parametrize("kwargs, match", [
    (dict(subjects=[9]), "subjects"), (dict(subjects=["subjX"]), "subjects"),
    (dict(subjects=[]), "subjects"), (dict(subjects=[1], sessions=0), "sessions"),
    (dict(subjects=[1], sessions=41), "sessions"), (dict(subjects=[1], sessions="3-1"), "sessions"),
    (dict(subjects=[1], sessions=[1, 99]), "sessions"), (dict(subjects=[1], spaces=("MNI",)), "spaces"),
])
def test_book_files_errors_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nsd.book_files(**kwargs)


def test_parse_sessions():
    assert nsd.parse_sessions("1-3,5") == [1, 2, 3, 5]
    assert nsd.parse_sessions(" 7, 2-3 ,3") == [2, 3, 7]
    for bad in ("", "a", "1-", "0", "1-41", "5-2"):
        with pytest.raises(ValueError, match="sessions"):
            nsd.parse_sessions(bad)


def test_estimated_sizes_follow_the_shapes():
    rel = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_session01.mgh"
    assert _manifest.estimated_size(rel)[0] == 284 + 163_842 * 750 * 4  # 491.5 MB (nsd_layout.md)
    size, basis = _manifest.estimated_size(
        "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz")
    assert size == 352 + 81 * 104 * 83 * 750 * 2 and basis.startswith("≤")
    assert _manifest.estimated_size("nsddata/experiments/nsd/nsd_expdesign.mat") == (None, "")


def test_getting_nsd_tables_are_generated():
    """Each table of book/getting_nsd.md marked with a selection equals book_files_table's output."""
    text = (REPO / "book" / "getting_nsd.md").read_text()
    blocks = re.findall(r"<!-- book_files_table\((.*?)\) -->\n(.*?)<!-- end -->", text, flags=re.S)
    assert len(blocks) >= 2
    for args, table in blocks:
        call = ast.parse(f"f({args})", mode="eval").body
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        assert table == nsd.book_files_table(**kwargs), args


# ----------------------------------------------------------------------------- S3 downloads
def test_download_fetches_exactly_the_selection(tmp_path, tiny_root, s3_url, coco_server):
    root = tmp_path / "nsd"
    summary = _get(root, s3_url, coco_server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selection = nsd.book_files([1], "1-2")
    s3 = _expected_s3(tiny_root, selection)
    coco = {f.relpath for f in selection if f.source == "coco"}
    assert _tree(root) == set(s3) | coco
    for rel in s3:
        assert _same(root, rel, tiny_root), rel
    for rel in coco:
        assert (root / rel).read_bytes() == (tiny_root / rel).read_bytes()
    assert not (root / _download.ZIP_DIR / _manifest.COCO_ANNOTATIONS_ZIP).exists()  # removed once extracted
    assert set(summary.fetched) == set(s3) | coco and not summary.skipped
    missing = {f.relpath for f in selection if f.source == "s3"} - set(s3)
    assert set(summary.missing_optional) == missing
    assert missing == _ABSENT
    # session 3 of subj01 and everything of subj02 stay in the bucket
    assert not any("session03" in r or "subj02" in r for r in _tree(root))
    # a second run transfers nothing
    again = _get(root, s3_url, coco_server)
    assert again.transferred == 0 and not again.fetched
    assert set(again.skipped) == set(s3) | coco


def test_dry_run_lists_sizes_and_fetches_nothing(tmp_path, tiny_root, s3_url, coco_server, capsys):
    root = tmp_path / "nsd"
    summary = _get(root, s3_url, coco_server, dry_run=True, progress=True)
    assert not root.exists() or not any(root.rglob("*"))
    s3 = _expected_s3(tiny_root, summary.files)
    for f in summary.files:
        if f.source == "s3":
            want = _EXTRA.get(f.relpath) or s3[f.relpath].stat().st_size
            assert f.size == want, f.relpath
    zips = summary.zips
    assert set(zips) == {_manifest.COCO_ANNOTATIONS_ZIP}
    assert zips[_manifest.COCO_ANNOTATIONS_ZIP] == len(coco_server[1].files[_manifest.COCO_ANNOTATIONS_ZIP])
    assert summary.bytes == sum(f.size for f in summary.files)
    out = capsys.readouterr()
    assert "Terms and Conditions" in out.err
    for f in summary.files:
        if f.source == "s3":
            assert f.relpath in out.out
    assert "files," in out.out and summary.dry_run and summary.transferred == 0


def test_missing_key_is_named(tmp_path, s3_url, coco_server):
    with pytest.raises(nsd.DownloadError, match=r"404.*subj02/fsaverage/betas_fithrf_GLMdenoise_RR/lh\.betas_session04\.mgh"):
        _get(tmp_path / "nsd", s3_url, coco_server, subjects=[2], sessions=[4])
    assert not (tmp_path / "nsd").exists() or not _tree(tmp_path / "nsd")


def test_private_object_gives_the_terms_message(tmp_path, s3_url, coco_server):
    with pytest.raises(nsd.DownloadError, match=r"403.*subj03/behav/responses\.tsv.*Terms"):
        _get(tmp_path / "nsd", s3_url, coco_server, subjects=[3], sessions=[1])


def _interrupt_after(monkeypatch, n_bytes: int, seen: list):
    """Make every transfer stop with a connection error after ``n_bytes``."""

    def reader(stream, chunk_size=_download.CHUNK):
        sent = 0
        while True:
            data = stream.read(min(chunk_size, 1000))
            if not data:
                return
            if sent + len(data) > n_bytes:
                raise ConnectionResetError("connection reset (test)")
            sent += len(data)
            seen.append(len(data))
            yield data

    monkeypatch.setattr(_download, "_read_chunks", reader)


def test_interrupted_download_resumes_with_a_range(tmp_path, tiny_root, s3_url, coco_server, monkeypatch):
    root = tmp_path / "nsd"
    rel = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_session02.mgh"
    size = (tiny_root / rel).stat().st_size
    assert size > 20_000
    seen = []
    _interrupt_after(monkeypatch, 10_000, seen)
    with pytest.raises(nsd.DownloadError, match="transfer"):
        _get(root, s3_url, coco_server, sessions=[2], workers=2)
    assert not (root / rel).exists()
    part = root / (rel + ".part")
    assert part.exists() and 0 < part.stat().st_size <= 10_000
    parts = {p: p.stat().st_size for p in root.rglob("*.part")}
    assert all(0 < n <= 10_000 for n in parts.values()) and len(parts) > 3
    monkeypatch.undo()
    summary = _get(root, s3_url, coco_server, sessions=[2], workers=2)
    assert _same(root, rel, tiny_root)
    assert not list(root.rglob("*.part"))
    assert rel in summary.fetched
    # every .part was continued with a ranged read: only the missing bytes were transferred
    owed = 0
    for f in summary.files:
        if f.source == "s3" and f.relpath not in summary.skipped:
            owed += f.size - parts.get(root / (f.relpath + ".part"), 0)
    for zp, zsize in summary.zips.items():
        owed += zsize - parts.get(root / _download.ZIP_DIR / (zp + ".part"), 0)
    assert summary.transferred == owed < summary.bytes


def test_wrong_size_files_are_refetched(tmp_path, tiny_root, s3_url, coco_server):
    root = tmp_path / "nsd"
    _get(root, s3_url, coco_server, sessions=[1])
    rel = "nsddata/ppdata/subj01/behav/responses.tsv"
    big = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/rh.betas_session01.mgh"
    lh = big.replace("/rh.", "/lh.")
    nc = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/lh.ncsnr.mgh"
    (root / rel).write_bytes(b"truncated")
    (root / big).unlink()
    (root / (big + ".part")).write_bytes(b"x" * ((tiny_root / big).stat().st_size + 5))  # too long
    # a .part of another version of the object (or of unknown version) must not be continued
    (root / lh).unlink()
    (root / (lh + ".part")).write_bytes(b"y" * 1000)
    (root / (lh + ".part.version")).write_text('"an-older-etag"')
    (root / nc).unlink()
    (root / (nc + ".part")).write_bytes(b"z" * 100)
    summary = _get(root, s3_url, coco_server, sessions=[1])
    assert set(summary.fetched) == {rel, big, lh, nc}
    for r in (rel, big, lh, nc):
        assert _same(root, r, tiny_root), r
    assert summary.transferred == sum((tiny_root / r).stat().st_size for r in (rel, big, lh, nc))
    assert not list(root.rglob("*.part")) and not list(root.rglob("*.part.version"))


# ----------------------------------------------------------------------------- COCO over HTTP
def test_coco_images_extract_the_pool(tmp_path, tiny_root, s3_url, coco_server, nsd_coco_id):
    root = tmp_path / "nsd"
    summary = _get(root, s3_url, coco_server, sessions=[1], coco_images=True, volume=False)
    for split in ("train2017", "val2017"):
        want = sorted(p.name for p in (tiny_root / COCO_DIR / split).glob("*.jpg"))
        got = sorted(p.name for p in (root / COCO_DIR / split).glob("*.jpg"))
        assert got == want and want
        for name in want:
            assert (root / COCO_DIR / split / name).read_bytes() == (tiny_root / COCO_DIR / split / name).read_bytes()
    assert not (root / COCO_DIR / "train2017" / f"{nsd_coco_id:012d}.jpg").exists()  # NSD image left out
    assert {"coco/train2017/", "coco/val2017/"} <= set(summary.fetched)
    assert not list((root / _download.ZIP_DIR).rglob("*.zip"))
    again = _get(root, s3_url, coco_server, sessions=[1], coco_images=True, volume=False)
    assert again.transferred == 0 and "coco/train2017/" in again.skipped


def test_coco_zip_download_resumes(tmp_path, tiny_root, s3_url, coco_server, monkeypatch):
    root = tmp_path / "nsd"
    url, handler = coco_server
    zsize = len(handler.files[_manifest.COCO_ANNOTATIONS_ZIP])
    _interrupt_after(monkeypatch, 3_000, [])
    with pytest.raises(nsd.DownloadError):
        _get(root, s3_url, coco_server, sessions=[1], volume=False)
    part = root / _download.ZIP_DIR / (_manifest.COCO_ANNOTATIONS_ZIP + ".part")
    assert part.exists() and 0 < part.stat().st_size < zsize
    done = part.stat().st_size
    assert not (root / ANNOTATIONS / "captions_train2017.json").exists()
    monkeypatch.undo()
    handler.log.clear()
    _get(root, s3_url, coco_server, sessions=[1], volume=False)
    ranged = [r for m, p, r in handler.log if m == "GET" and p.endswith("annotations_trainval2017.zip")]
    assert ranged == [f"bytes={done}-"]
    assert not part.exists()
    # a .part of a zip that has changed on the server since is fetched whole (If-Range)
    zdir = root / _download.ZIP_DIR
    stale = zdir / (_manifest.COCO_ANNOTATIONS_ZIP + ".part")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"old" * 100)
    stale.with_name(stale.name + ".version").write_text('"older"')
    (root / ANNOTATIONS / "captions_val2017.json").unlink()
    handler.log.clear()
    _get(root, s3_url, coco_server, sessions=[1], volume=False)
    assert [r for m, p, r in handler.log if m == "GET"] == [None]
    assert (root / ANNOTATIONS / "captions_val2017.json").read_bytes() == \
        (tiny_root / ANNOTATIONS / "captions_val2017.json").read_bytes()
    for p in (tiny_root / ANNOTATIONS).glob("*.json"):
        assert (root / ANNOTATIONS / p.name).read_bytes() == p.read_bytes()
    assert not (root / ANNOTATIONS / "person_keypoints_val2017.json").exists()


def test_coco_dry_run_and_404(tmp_path, s3_url, coco_server):
    summary = _get(tmp_path / "nsd", s3_url, coco_server, sessions=[1], coco_images=True, dry_run=True)
    files = coco_server[1].files
    assert summary.zips == {k: len(v) for k, v in files.items()}
    assert not (tmp_path / "nsd").exists() or not any((tmp_path / "nsd").rglob("*"))
    with pytest.raises(nsd.DownloadError, match="404.*annotations_trainval2017.zip"):
        nsd.download(tmp_path / "nsd", [1], [1], endpoint_url=s3_url, coco_url=coco_server[0] + "nothing/",
                     dry_run=True, progress=False)


# ----------------------------------------------------------------------------- command line
@pytest.mark.filterwarnings("ignore:optional file not in the bucket")
def test_command_line(tmp_path, s3_url, coco_server, capsys):
    root = tmp_path / "nsd"
    code = main(["download", str(root), "--subjects", "1", "--sessions", "1", "--dry-run", "--no-volume",
                 "--endpoint-url", s3_url, "--coco-url", coco_server[0]])
    assert code == 0 and (not root.exists() or not any(root.rglob("*")))
    assert "lh.betas_session01.mgh" in capsys.readouterr().out
    assert main(["download", str(root), "--subjects", "9", "--dry-run"]) == 2
    assert "subjects" in capsys.readouterr().err
    code = main(["download", str(root), "--subjects", "1", "--sessions", "1", "--no-volume", "--quiet",
                 "--endpoint-url", s3_url, "--coco-url", coco_server[0]])
    assert code == 0 and (root / "nsddata/ppdata/subj01/behav/responses.tsv").is_file()
    code = main(["download", str(root), "--subjects", "2", "--sessions", "4", "--quiet",
                 "--endpoint-url", s3_url, "--coco-url", coco_server[0]])
    assert code == 1 and "lh.betas_session04.mgh" in capsys.readouterr().err
