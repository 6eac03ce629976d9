"""Download the files the book reads (:func:`~brainllm_utils.nsd.book_files`) for a selection.

NSD's files come from its public S3 bucket ``natural-scenes-dataset`` (region us-east-2),
read anonymously with boto3; the COCO 2017 annotations and images come from COCO's own zip
files over HTTP(S) (``http://images.cocodataset.org/``), read with :mod:`urllib`, of which
only the needed members are extracted. Every transfer is

- listed first (S3 ``HEAD``, HTTP ``HEAD`` ``Content-Length``): a dry run stops there;
- resumable: bytes go to ``<file>.part``; a later run continues it with a ranged request
  (S3 ``Range=bytes=N-``, HTTP ``Range``);
- size-checked and atomic: the ``.part`` is renamed to the final name only when complete and
  of the listed size, so an interrupted download never leaves a file that looks complete;
- skipped when a file of the listed size is already there (a wrong size is fetched again);
- parallel (a thread pool) with one progress bar over the bytes to fetch.

``python -m brainllm_utils.nsd download ROOT --subjects 1,2 --sessions 1-5`` is the command
line (:func:`add_arguments`, :func:`run`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.error
import urllib.request
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from .._utils.paths import atomic_write_text
from .layout import SPACES, STIM_INFO
from ._manifest import BookFile, book_files, coco_source, parse_sessions

__all__ = ["download", "DownloadSummary", "DownloadError", "add_arguments", "run",
           "NSD_BUCKET", "NSD_REGION", "COCO_URL", "TERMS_REMINDER"]

#: NSD's public bucket and its region.
NSD_BUCKET = "natural-scenes-dataset"
NSD_REGION = "us-east-2"
#: Base URL of COCO's downloads (``annotations/…zip``, ``zips/{train,val}2017.zip``).
COCO_URL = "http://images.cocodataset.org/"
#: Bytes per read of a transfer.
CHUNK = 1 << 20
#: Folder (under the NSD root) where COCO zips are kept while their members are extracted.
ZIP_DIR = ".brainllm_download"

TERMS_REMINDER = """\
NSD Terms and Conditions: before downloading or using the Natural Scenes Dataset you must
agree to its Terms and Conditions and fill in the NSD Data Access form
(https://cvnlab.slite.page/p/IB6BSeW_7o/Terms-and-Conditions, https://forms.gle/xue2bCdM9LaFNMeb7).
Research and education only; do not redistribute the dataset or any of its components; cite
Allen et al., "A massive 7T fMRI dataset to bridge cognitive neuroscience and artificial
intelligence", Nature Neuroscience (2022). COCO annotations and images carry COCO's terms
(annotations CC BY 4.0; images under their Flickr licences)."""


class DownloadError(RuntimeError):
    """A file could not be listed or fetched (missing key, access denied, size mismatch)."""


@dataclass(frozen=True)
class DownloadSummary:
    """What :func:`download` listed, fetched and skipped.

    Attributes
    ----------
    files : tuple of BookFile
        Every file of the selection with its listed size; a COCO file carries the size of
        its zip when it is the zip's first file, 0 otherwise (the zip is fetched once; see
        ``zips``). Optional files missing from the bucket are left out.
    bytes : int
        Total listed bytes (NSD files plus COCO zips).
    skipped : tuple of str
        Relative paths already complete on disk (nothing transferred).
    fetched : tuple of str
        Relative paths transferred in this run (empty for a dry run).
    transferred : int
        Bytes transferred in this run (less than the files' sizes when resuming).
    missing_optional : tuple of str
        Optional files (``required=False``) the bucket does not have.
    zips : dict of str to int
        COCO zips used (path under the COCO URL) and their sizes.
    dry_run : bool
        Whether this was a dry run.
    """

    files: tuple
    bytes: int
    skipped: tuple
    fetched: tuple
    transferred: int
    missing_optional: tuple
    zips: dict
    dry_run: bool


# ----------------------------------------------------------------------------- helpers
def _fmt(n: float) -> str:
    for unit, k in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.2f} {unit}"
    return f"{int(n)} B"


def _read_chunks(stream, chunk_size: int = CHUNK):
    """Yield the chunks of a readable stream (boto3 body or HTTP response) until EOF."""
    while True:
        data = stream.read(chunk_size)
        if not data:
            return
        yield data


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


class _Progress:
    """A thread-safe byte counter around an optional tqdm bar."""

    def __init__(self, total: int, enabled: bool):
        self.lock = threading.Lock()
        self.bytes = 0
        self.bar = None
        if enabled and total > 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                            desc="download", file=sys.stderr)

    def update(self, n: int) -> None:
        with self.lock:
            self.bytes += n
            if self.bar is not None:
                self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fetch_resumable(dest: Path, size: int, opener, progress: _Progress, what: str,
                     version: str = "") -> int:
    """Fetch ``size`` bytes into ``dest`` through ``dest.part``; returns bytes transferred.

    ``opener(offset)`` returns ``(stream, start)``: a readable stream of the bytes from
    ``start`` (``offset`` when the server honoured the range, 0 when it sent everything).
    ``version`` (the listing's ETag) is kept beside the ``.part`` (``.part.version``): a
    ``.part`` of another version of the file, or of unknown version, is started over.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part(dest)
    tag = part.with_name(part.name + ".version")
    offset = part.stat().st_size if part.exists() else 0
    same = tag.exists() and tag.read_text() == version
    if offset > size or (offset and not same):  # a stale or foreign .part: start over
        part.unlink()
        offset = 0
    if offset == 0:
        tag.write_text(version)
    got = 0
    if offset < size:
        stream, start = opener(offset)
        try:
            mode = "ab" if start == offset and offset > 0 else "wb"
            with open(part, mode) as fh:
                for data in _read_chunks(stream):
                    fh.write(data)
                    got += len(data)
                    progress.update(len(data))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    have = part.stat().st_size
    if have != size:
        if have > size:
            part.unlink()
        raise DownloadError(f"{what}: got {have} bytes, the listing says {size}; "
                            f"{'partial data kept in ' + str(part) if have < size else 'discarded'} "
                            "(run the command again to resume)")
    os.replace(part, dest)
    tag.unlink(missing_ok=True)
    return got


# ----------------------------------------------------------------------------- S3
def _s3_client(endpoint_url, workers):
    try:
        import boto3
    except ImportError as err:
        raise ImportError("downloading NSD needs boto3, the package's 'download' extra: "
                          "pip install 'brainllm-utils[download]' (or -r requirements.txt)") from err
    import botocore
    from botocore.config import Config

    cfg = Config(signature_version=botocore.UNSIGNED, max_pool_connections=max(10, workers),
                 retries={"max_attempts": 5, "mode": "standard"})
    return boto3.client("s3", region_name=NSD_REGION, endpoint_url=endpoint_url, config=cfg)


def _s3_error(err, key: str) -> DownloadError:
    code = str(err.response.get("Error", {}).get("Code", ""))
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    url = f"s3://{NSD_BUCKET}/{key}"
    if code in ("412", "PreconditionFailed") or status == 412:
        return DownloadError(f"{url} changed since it was listed: run the command again")
    if code in ("403", "AccessDenied", "Forbidden") or status == 403:
        return DownloadError(
            f"403 access denied for {url}: the object is not public to anonymous reads. "
            "Accept NSD's Terms and Conditions and fill in the data access form "
            "(https://forms.gle/xue2bCdM9LaFNMeb7), and check the key (and --endpoint-url)")
    if code in ("404", "NoSuchKey", "NotFound") or status == 404:
        return DownloadError(f"404 not found: {url} (key {key!r}) is not in the bucket; "
                             "check the subject/session selection and the key")
    return DownloadError(f"{url}: {err}")


def _s3_size(client, key: str) -> tuple[int, str]:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=NSD_BUCKET, Key=key)
    except ClientError as err:
        raise _s3_error(err, key) from None
    return int(head["ContentLength"]), str(head.get("ETag", ""))


def _s3_fetch(client, f: BookFile, root: Path, progress: _Progress, etag: str = "") -> int:
    from botocore.exceptions import ClientError

    def opener(offset):
        kw = {"Range": f"bytes={offset}-"} if offset else {}
        if etag:
            kw["IfMatch"] = etag  # the object listed, not a newer one
        try:
            resp = client.get_object(Bucket=NSD_BUCKET, Key=f.relpath, **kw)
        except ClientError as err:
            raise _s3_error(err, f.relpath) from None
        start = offset if offset and "ContentRange" in resp else 0
        return resp["Body"], start

    return _fetch_resumable(root / f.relpath, f.size, opener, progress, f"s3://{NSD_BUCKET}/{f.relpath}",
                            version=etag)


# ----------------------------------------------------------------------------- HTTP (COCO)
def _http_error(err: urllib.error.HTTPError, url: str) -> DownloadError:
    if err.code == 404:
        return DownloadError(f"404 not found: {url} (check --coco-url)")
    if err.code == 403:
        return DownloadError(f"403 access denied: {url} (check --coco-url and your network's proxy)")
    return DownloadError(f"{url}: HTTP {err.code} {err.reason}")


def _http_size(url: str) -> tuple[int, str]:
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            length = resp.headers.get("Content-Length")
            version = resp.headers.get("ETag") or resp.headers.get("Last-Modified") or ""
    except urllib.error.HTTPError as err:
        raise _http_error(err, url) from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{url}: cannot connect ({err.reason})") from None
    if length is None:
        raise DownloadError(f"{url}: the server gives no Content-Length (cannot size-check)")
    return int(length), version


def _http_fetch(url: str, dest: Path, size: int, progress: _Progress, version: str = "") -> int:
    def opener(offset):
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        if offset and version:
            headers["If-Range"] = version  # a changed file comes whole (200), not a range
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
        except urllib.error.HTTPError as err:
            raise _http_error(err, url) from None
        except urllib.error.URLError as err:
            raise DownloadError(f"{url}: cannot connect ({err.reason})") from None
        start = offset if offset and resp.status == 206 else 0
        return resp, start

    return _fetch_resumable(dest, size, opener, progress, url, version=version)


def _nsd_coco_ids(root: Path) -> set[int] | None:
    p = root / STIM_INFO
    if not p.exists():
        return None
    import pandas as pd

    return set(int(c) for c in pd.read_csv(p, usecols=["cocoId"])["cocoId"])


def _extract_members(zpath: Path, wanted: dict[str, Path]) -> list[str]:
    """Extract ``{member: dest}`` atomically; members already there at their size are skipped."""
    done = []
    with zipfile.ZipFile(zpath) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        missing = [m for m in wanted if m not in infos]
        if missing:
            raise DownloadError(f"{zpath}: the zip lacks {missing[:5]}{' …' if len(missing) > 5 else ''}")
        for member, dest in wanted.items():
            info = infos[member]
            if dest.exists() and dest.stat().st_size == info.file_size:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = _part(dest)
            with zf.open(info) as src, open(tmp, "wb") as out:
                for data in _read_chunks(src):
                    out.write(data)
            if tmp.stat().st_size != info.file_size:
                tmp.unlink()
                raise DownloadError(f"{zpath}: member {member} extracted to the wrong size")
            os.replace(tmp, dest)
            done.append(str(dest))
    return done


def _image_members(zpath: Path, prefix: str, folder: Path, exclude: set[int] | None) -> dict[str, Path]:
    """``{member: dest}`` of the pool's JPEGs in an image zip (NSD's images left out when known)."""
    out = {}
    with zipfile.ZipFile(zpath) as zf:
        for name in zf.namelist():
            if not name.startswith(prefix) or not name.endswith(".jpg"):
                continue
            stem = name[len(prefix):-4]
            if "/" in stem:
                continue
            try:
                cid = int(stem)
            except ValueError:
                continue
            if exclude is not None and cid in exclude:
                continue
            out[name] = folder / f"{cid:012d}.jpg"
    return out


def _coco_marker(folder: Path, zip_path: str) -> Path:
    return folder / f".complete-{Path(zip_path).stem}.json"


# ----------------------------------------------------------------------------- public
def download(root, subjects, sessions=None, spaces=("fsaverage",), *, coco_images: bool = False,
             dry_run: bool = False, workers: int = 8, endpoint_url: str | None = None,
             coco_url: str = COCO_URL, progress: bool = True, volume: bool = True) -> DownloadSummary:
    """Fetch the files the book reads for a selection from NSD's S3 bucket and COCO's zips.

    Lists every file first (and prints the NSD terms reminder), then fetches what is not
    complete on disk: in parallel, resumable, size-checked and atomic (module docstring).

    Parameters
    ----------
    root : str or path-like
        The local NSD root to fill (created if missing).
    subjects : iterable of int or str
        NSD subjects (``1`` … ``8`` or ``"subj01"`` …), as :func:`book_files`.
    sessions : None, int, sequence of int or str, optional
        Sessions, as :func:`book_files` (``None``: all of each subject's).
    spaces : sequence of {"fsaverage", "func1pt8mm"}, default=("fsaverage",)
        Spaces of the betas.
    coco_images : bool, default=False
        Also fetch COCO's train2017/val2017 image zips and extract the images outside NSD
        (the training pool of chapter 05) to ``coco/<split>/``.
    dry_run : bool, default=False
        List files and sizes (and the total) and fetch nothing.
    workers : int, default=8
        Parallel transfers.
    endpoint_url : str, optional
        Another S3 endpoint (a mirror, or a local server in tests); ``None``: AWS.
    coco_url : str, default="http://images.cocodataset.org/"
        Base URL of COCO's zips.
    progress : bool, default=True
        Show a progress bar over the bytes to fetch, and print the listing.
    volume : bool, default=True
        Include what the volume searchlight and its projection to fsaverage need
        (:func:`book_files`).

    Returns
    -------
    summary : DownloadSummary
        Files (with sizes), total bytes, skipped and fetched paths, bytes transferred.

    Raises
    ------
    DownloadError
        When a required file is not in the bucket (404, naming the key), not readable
        anonymously (403), or arrives with the wrong size; files fetched before the error
        are kept, partial ones as ``.part`` for the next run.
    """
    root = Path(root)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r}: expected an integer >= 1")
    if not isinstance(coco_url, str) or not coco_url:
        raise ValueError(f"coco_url={coco_url!r}: expected a base URL such as {COCO_URL!r}")
    coco_url = coco_url if coco_url.endswith("/") else coco_url + "/"
    files = book_files(subjects, sessions, spaces, coco_images=coco_images, volume=volume)
    say = print if progress else (lambda *a, **k: None)
    print(TERMS_REMINDER, file=sys.stderr)

    # ---- listing
    s3_files = [f for f in files if f.source == "s3"]
    coco_files = [f for f in files if f.source == "coco"]
    client = _s3_client(endpoint_url, workers) if s3_files else None
    sizes: dict[str, int] = {}
    versions: dict[str, str] = {}
    errors: dict[str, DownloadError] = {}

    def list_one(f):
        try:
            sizes[f.relpath], versions[f.relpath] = _s3_size(client, f.relpath)
        except DownloadError as err:
            errors[f.relpath] = err

    zips: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(list_one, s3_files))
        zip_paths = sorted({coco_source(f.relpath)[0] for f in coco_files})
        for zp, (size, version) in zip(zip_paths, pool.map(lambda z: _http_size(coco_url + z), zip_paths)):
            zips[zp] = size
            versions[zp] = version
    missing_optional = []
    fatal = []
    for f in s3_files:
        if f.relpath in errors:
            if not f.required and str(errors[f.relpath]).startswith("404"):
                missing_optional.append(f.relpath)
                warnings.warn(f"optional file not in the bucket, skipped: {f.relpath}", stacklevel=2)
            else:
                fatal.append(str(errors[f.relpath]))
    if fatal:
        raise DownloadError(f"{len(fatal)} file(s) cannot be listed:\n  " + "\n  ".join(fatal))
    listed = []
    seen_zip = set()
    for f in files:
        if f.source == "s3":
            if f.relpath in sizes:
                listed.append(replace(f, size=sizes[f.relpath]))
        else:
            zp = coco_source(f.relpath)[0]
            listed.append(replace(f, size=0 if zp in seen_zip else zips[zp]))
            seen_zip.add(zp)
    total = sum(sizes.values()) + sum(zips.values())

    # ---- what is already there
    skipped, todo_s3 = [], []
    for f in listed:
        if f.source != "s3":
            continue
        dest = root / f.relpath
        if dest.is_file() and dest.stat().st_size == f.size:
            skipped.append(f.relpath)
        else:
            todo_s3.append(f)
    todo_zip: dict[str, list[BookFile]] = {}
    for f in listed:
        if f.source != "coco":
            continue
        zp, member = coco_source(f.relpath)
        dest = root / f.relpath
        done = (_coco_marker(dest, zp).exists() if f.relpath.endswith("/") else dest.is_file())
        if done:
            skipped.append(f.relpath)
        else:
            todo_zip.setdefault(zp, []).append(f)

    for f in listed:
        where = (f"s3://{NSD_BUCKET}/{f.relpath}" if f.source == "s3"
                 else f"{coco_url}{coco_source(f.relpath)[0]} → {f.relpath}")
        state = "present" if f.relpath in skipped else ("" if not dry_run else "to fetch")
        say(f"{_fmt(f.size):>10}  {where}{'  (' + state + ')' if state else ''}")
    say(f"{len(listed)} files, {_fmt(total)} listed; {len(skipped)} already complete"
        + (f"; {len(missing_optional)} optional not in the bucket" if missing_optional else ""))
    if dry_run:
        return DownloadSummary(tuple(listed), total, tuple(skipped), (), 0, tuple(missing_optional),
                               zips, True)

    # ---- transfers
    zip_dir = root / ZIP_DIR
    def owed(dest: Path, size: int) -> int:
        have = _part(dest).stat().st_size if _part(dest).exists() else 0
        return size - have if have <= size else size  # a too-long .part is fetched again

    need = sum(owed(root / f.relpath, f.size) for f in todo_s3)
    for zp in todo_zip:
        zdest = zip_dir / zp
        if not (zdest.is_file() and zdest.stat().st_size == zips[zp]):
            need += owed(zdest, zips[zp])
    bar = _Progress(max(need, 0), progress)
    fetched: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def interrupted(what, dest, err):
        part = _part(dest)
        kept = f"{part.stat().st_size} bytes kept in {part}" if part.exists() else "nothing kept"
        return f"{what}: interrupted ({type(err).__name__}: {err}); {kept}"

    def fetch_s3(f):
        try:
            _s3_fetch(client, f, root, bar, versions.get(f.relpath, ""))
            with lock:
                fetched.append(f.relpath)
        except DownloadError as err:
            with lock:
                failures.append(str(err))
        except Exception as err:  # network errors of any library: reported, the .part is kept
            with lock:
                failures.append(interrupted(f"s3://{NSD_BUCKET}/{f.relpath}", root / f.relpath, err))

    def fetch_zip(zp):
        zdest = zip_dir / zp
        try:
            if not (zdest.is_file() and zdest.stat().st_size == zips[zp]):
                _http_fetch(coco_url + zp, zdest, zips[zp], bar, versions.get(zp, ""))
        except DownloadError as err:
            with lock:
                failures.append(str(err))
        except Exception as err:  # network errors: reported, the .part is kept
            with lock:
                failures.append(interrupted(coco_url + zp, zdest, err))

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda job: job[0](job[1]),
                          [(fetch_zip, zp) for zp in todo_zip] + [(fetch_s3, f) for f in todo_s3]))
    finally:
        bar.close()
    # extraction after the transfers: the pool's images exclude NSD's (the CSV, now on disk)
    for zp, wanted in todo_zip.items():
        zdest = zip_dir / zp
        if not zdest.is_file():
            continue  # its transfer failed (reported below)
        try:
            fetched.extend(_extract_coco(root, zp, zdest, wanted))
        except (DownloadError, zipfile.BadZipFile, OSError) as err:
            failures.append(f"{coco_url}{zp}: cannot extract ({err})")
    if failures:
        raise DownloadError(f"{len(failures)} transfer(s) failed (completed files are kept; run "
                            "again to resume):\n  " + "\n  ".join(failures))
    say(f"fetched {len(fetched)} files ({_fmt(bar.bytes)} transferred), {len(skipped)} already complete")
    return DownloadSummary(tuple(listed), total, tuple(skipped), tuple(fetched), bar.bytes,
                           tuple(missing_optional), zips, False)


def _extract_coco(root: Path, zp: str, zpath: Path, wanted: list[BookFile]) -> list[str]:
    """Extract the files of ``wanted`` from the downloaded zip; returns the relpaths done."""
    done = []
    singles = {coco_source(f.relpath)[1]: root / f.relpath for f in wanted if not f.relpath.endswith("/")}
    if singles:
        _extract_members(zpath, singles)
        done += [str(p.relative_to(root)) for p in singles.values()]
    for f in wanted:
        if not f.relpath.endswith("/"):
            continue
        folder = root / f.relpath
        exclude = _nsd_coco_ids(root)
        members = _image_members(zpath, coco_source(f.relpath)[1], folder, exclude)
        _extract_members(zpath, members)
        marker = _coco_marker(folder, zp)
        atomic_write_text(marker, json.dumps({"zip": zp, "size": zpath.stat().st_size, "images": len(members),
                                      "nsd_excluded": exclude is not None}))
        done.append(f.relpath)
    if all(f.relpath in done for f in wanted):
        zpath.unlink()  # every member needed is out: the zip (up to 19 GB) is not kept
    return done


def add_arguments(parser) -> None:
    """Add the ``download`` subcommand's arguments to an :mod:`argparse` parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("root", help="the local NSD root to fill (created if missing)")
    parser.add_argument("--subjects", required=True,
                        help="subjects, e.g. '1,2' or '1-8' (NSD has 8)")
    parser.add_argument("--sessions", default=None,
                        help="sessions, e.g. '1-5,7' (default: all of each subject's)")
    parser.add_argument("--space", action="append", choices=SPACES, dest="spaces",
                        help="space of the betas (repeatable; default: fsaverage)")
    parser.add_argument("--no-volume", action="store_true",
                        help="leave out the 1.8-mm files of the volume searchlight")
    parser.add_argument("--coco-images", action="store_true",
                        help="also fetch the COCO images chapter 05 trains on (COCO's train2017/val2017 "
                             "zips; --dry-run shows their size)")
    parser.add_argument("--dry-run", action="store_true", help="list files and sizes, fetch nothing")
    parser.add_argument("--workers", type=int, default=8, help="parallel transfers (default 8)")
    parser.add_argument("--endpoint-url", default=None, help="another S3 endpoint (default: AWS)")
    parser.add_argument("--coco-url", default=COCO_URL, help=f"base URL of COCO's zips (default {COCO_URL})")
    parser.add_argument("--quiet", action="store_true", help="no listing, no progress bar")


def run(args) -> int:
    """Run the ``download`` subcommand from parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Arguments from a parser set up by :func:`add_arguments`.

    Returns
    -------
    code : int
        0 on success, 1 when a file cannot be listed or fetched, 2 for a bad selection.
    """
    try:
        subjects = parse_sessions(args.subjects)  # the same "1-3,5" syntax
    except (TypeError, ValueError):
        subjects = [s.strip() for s in str(args.subjects).split(",") if s.strip()]
    try:
        download(args.root, subjects, args.sessions, tuple(args.spaces or ("fsaverage",)),
                 coco_images=args.coco_images, dry_run=args.dry_run, workers=args.workers,
                 endpoint_url=args.endpoint_url, coco_url=args.coco_url, progress=not args.quiet,
                 volume=not args.no_volume)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
