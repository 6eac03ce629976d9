"""Fault injection against the caches (issue 15, reliability report rows 40-50).

Every case asserts a clear error or a result equal to a clean (uncached) run: killed writers
(``kill -9`` of a subprocess at several points, then a rerun), stale temporary files, damaged
entries (checksums), cache keys that must change with every input, two processes computing
the same betas, read-only and full cache folders (a small tmpfs where ``mount`` works, and a
simulated ``ENOSPC``), and the permissions of the files written.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from brainllm_utils._utils import cache as C
from brainllm_utils._utils import paths as P
from brainllm_utils.nsd import NSD

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[1]
SENTS = ["A cat on a mat.", "Two dogs play on the beach.", "A red bus in the rain.", "A cat on a mat."]


# --------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def clean_betas(tiny_root):
    Y, ids = NSD(tiny_root).betas("subj01", cache=False, progress=False)
    return np.array(Y), np.array(ids)


@pytest.fixture(scope="module")
def minilm():
    from brainllm_utils.weights import MINILM, resolve_model

    return resolve_model(MINILM)


@pytest.fixture(scope="module")
def clean_embed(minilm):
    import torch

    torch.set_num_threads(1)
    from brainllm_utils.embeddings import embed_sentences

    return embed_sentences(SENTS, model=minilm, cache=False)


def _temps(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp")] if Path(folder).exists() else []


def _betas(root, cache):
    return NSD(root, cache_dir=cache).betas("subj01", progress=False)


def _assert_hit(root, cache, clean):
    """A further call reads the entry (no computation, no warning) and equals the clean run."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        orig = NSD._average_sessions
        try:
            NSD._average_sessions = lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed"))
            Y, ids = _betas(root, cache)
        finally:
            NSD._average_sessions = orig
    np.testing.assert_array_equal(np.asarray(Y), clean[0])
    np.testing.assert_array_equal(ids, clean[1])


def _entry(cache: Path) -> tuple[Path, Path]:
    ys = [p for p in (cache / "betas").glob("subj01_fsaverage_*.npy") if not p.name.endswith("_ids.npy")]
    assert len(ys) == 1, ys
    y = ys[0]
    return y, y.with_name(y.stem + "_ids.npy")


def _replace(path: Path, data: bytes) -> None:
    """Replace (never modify in place: tree copies are hard links) keeping size and mtime."""
    st = path.stat()
    path.unlink()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


_SCRIPT = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    import numpy as np
    root, cache, mode, marker, out = sys.argv[1:6]

    def hang():
        Path(marker).write_text(str(os.getpid()))
        while True:
            time.sleep(0.5)

    if mode.startswith("embed"):
        import torch
        torch.set_num_threads(1)
        from brainllm_utils.features import embeddings as E
        if mode == "embed-during-encode":
            E._encode = lambda *a, **k: hang()
        elif mode == "embed-before-list":
            real = E.write_npy
            def w(p, a):
                if "sentences-" not in str(p):
                    hang()
                return real(p, a)
            E.write_npy = w
        X = E.embed_sentences(%(sents)r, model=root, cache=cache)
        np.save(out, np.asarray(X))
        sys.exit(0)

    from brainllm_utils.nsd import NSD
    from brainllm_utils.nsd import _betas as B
    from brainllm_utils._utils import cache as C
    from brainllm_utils._utils import paths as P
    real_avg = NSD._average_sessions
    if mode == "during-average":
        def f(self, o, *a, **k):
            real_avg(self, o, *a, **k)
            o.flush()
            hang()
        NSD._average_sessions = f
    elif mode == "before-checksums":
        B.write_checksums = lambda *a: hang()
    elif mode == "before-ids":
        B.write_npy = lambda p, a: hang()
    elif mode == "during-ids-write":
        real_wc = C.write_checksums
        def wc(p, *rest):
            if "_ids.npy" in str(p):
                hang()
            return real_wc(p, *rest)
        C.write_checksums = wc
    elif mode == "count":
        def f(self, *a, **k):
            with open(marker, "a") as fh:
                fh.write("compute\\n")
            go = os.environ.get("GO_FILE")
            while go and not os.path.exists(go):
                time.sleep(0.05)
            return real_avg(self, *a, **k)
        NSD._average_sessions = f
    elif mode == "lying-disk-usage":
        import collections
        U = collections.namedtuple("U", "total used free")
        P.shutil.disk_usage = lambda p: U(1 << 40, 0, 1 << 40)
    Y, ids = NSD(root, cache_dir=cache).betas("subj01", progress=False)
    np.save(out, np.asarray(Y))
''') % {"sents": SENTS}


def _spawn(tmp_path, root, cache, mode, env=None, tag="p"):
    script = tmp_path / "fault_script.py"
    script.write_text(_SCRIPT)
    marker, out = tmp_path / f"{tag}.marker", tmp_path / f"{tag}.npy"
    e = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **(env or {}))
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(cache), mode, str(marker), str(out)],
                            env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, marker, out


def _wait_for(marker: Path, proc, limit=240.0):
    t0 = time.monotonic()
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before the fault point:\n"
                                 f"{proc.stderr.read()[-3000:]}")
        if time.monotonic() - t0 > limit:
            proc.kill()
            raise AssertionError("the fault point was never reached")
        time.sleep(0.05)


# --------------------------------------------------------------------------- tmpfs
@pytest.fixture
def tmpfs(tmp_path):
    """``make(size, ro=False)`` mounts a small tmpfs (``None`` when mounting is not allowed)."""
    mounts = []

    def make(size="1m", ro=False):
        d = tmp_path / f"mnt{len(mounts)}"
        d.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        try:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True)
        except OSError:
            return None
        if r.returncode != 0:
            return None
        mounts.append(d)
        return d

    yield make
    for d in reversed(mounts):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _remount_ro(d: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True, capture_output=True)


def _fill(d: Path, leave: int = 0) -> None:
    """Fill the file system of ``d`` until ENOSPC, then free ``leave`` bytes."""
    with open(d / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    if leave:
        size = (d / "filler").stat().st_size
        os.truncate(d / "filler", max(0, size - leave))


def _full_folder(backend, tmpfs, tmp_path, monkeypatch, leave=0):
    """A cache root with no room: a full tmpfs, or a simulated one (disk_usage says 0 free and
    posix_fallocate/os.write raise ENOSPC)."""
    if backend == "tmpfs":
        d = tmpfs("1m")
        if d is None:
            pytest.skip("mount -t tmpfs is not allowed here (the simulated case covers it)")
        _fill(d, leave)
        return d
    import collections

    U = collections.namedtuple("U", "total used free")
    monkeypatch.setattr(P.shutil, "disk_usage", lambda p: U(1 << 20, 1 << 20, leave))

    def no_room(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(P.os, "posix_fallocate", no_room)
    d = tmp_path / "simfull"
    d.mkdir()
    return d


# --------------------------------------------------------------------------- the cases
CASES: list = []


def _cases(row, items):
    out = [pytest.param(v, id=f"row{row}-{name}") for name, v in items]
    CASES.extend(out)
    return out


# ---- row 40: kill -9 during the betas write; temp files of dead writers
KILL_POINTS = _cases(40, [(m, m) for m in ("during-average", "before-checksums", "before-ids",
                                            "during-ids-write")])


@pytest.mark.parametrize("case", KILL_POINTS)
def test_kill9_betas_then_rerun(case, tiny_root, tmp_path, clean_betas):
    cache = tmp_path / "cache"
    proc, marker, _ = _spawn(tmp_path, tiny_root, cache, case)
    _wait_for(marker, proc)
    if case == "during-average":
        assert _temps(cache), "the fault point is inside the write: a temporary file exists"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", C.CorruptCacheWarning)  # an ids file without checksum
        Y, ids = _betas(tiny_root, cache)
    np.testing.assert_array_equal(np.asarray(Y), clean_betas[0])
    assert not _temps(cache), "a killed writer's temporary file must not remain"
    assert not list((cache / "betas").glob(".*.lock"))
    _assert_hit(tiny_root, cache, clean_betas)


EMBED_KILLS = _cases(49, [("kill9-embed-during-encode", "embed-during-encode"),
                          ("kill9-embed-before-list", "embed-before-list")])


@pytest.mark.parametrize("case", EMBED_KILLS)
def test_kill9_embed_then_rerun(case, minilm, tmp_path, clean_embed):
    from brainllm_utils.embeddings import embed_sentences

    cache = tmp_path / "cache"
    proc, marker, _ = _spawn(tmp_path, minilm, cache, case)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    X = embed_sentences(SENTS, model=minilm, cache=cache)
    np.testing.assert_allclose(X, clean_embed, atol=1e-6)
    assert not _temps(cache)
    assert not list(cache.rglob("claim-*")), "a dead process's claim must be removed"


TEMP_KINDS = _cases(40, [
    ("tmp-dead-pid-removed", ("dead", 0.0, True)),
    ("tmp-live-pid-kept", ("live", 0.0, False)),
    ("tmp-other-host-young-kept", ("otherhost", 0.0, False)),
    ("tmp-other-host-old-removed", ("otherhost", 48.0, True)),
    ("tmp-foreign-young-kept", ("foreign", 0.0, False)),
    ("tmp-foreign-old-removed", ("foreign", 48.0, True)),
    ("tmp-not-hidden-kept", ("visible", 48.0, False)),
])


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("case", TEMP_KINDS)
def test_stale_temps_removed_when_the_cache_is_resolved(case, tmp_path):
    kind, age_h, removed = case
    folder = tmp_path / "root" / "betas" / "sub"
    folder.mkdir(parents=True)
    host = P._HOST
    name = {"dead": f".x.npy.{host}.{_dead_pid()}.0123abcd.tmp",
            "live": f".x.npy.{host}.{os.getpid()}.0123abcd.tmp",
            "otherhost": f".x.npy.{host}x.{_dead_pid()}.0123abcd.tmp",
            "foreign": ".x.npy.k2j3h4.tmp",
            "visible": "x.npy.tmp"}[kind]
    f = folder / name
    f.write_bytes(b"\0" * 1000)
    if age_h:
        t = time.time() - age_h * 3600
        os.utime(f, (t, t))
    keep = folder / "entry.npy"
    keep.write_bytes(b"x")
    assert C.resolve_cache(tmp_path / "root", "betas") == tmp_path / "root" / "betas"
    assert f.exists() is not removed
    assert keep.exists()


FAILED_WRITES = _cases(40, [("exception-in-average", KeyboardInterrupt), ("error-in-average", RuntimeError)])


@pytest.mark.parametrize("case", FAILED_WRITES)
def test_a_failed_betas_write_leaves_nothing(case, tiny_root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"

    def boom(*a, **k):
        raise case("injected")

    monkeypatch.setattr(NSD, "_average_sessions", boom)
    with pytest.raises(case, match="injected"):
        _betas(tiny_root, cache)
    assert not [p for p in (cache / "betas").rglob("*")], "temp, lock or partial entry left"


# ---- row 41 (re-checked) and row 42: damaged betas entries
def _damage(kind, y: Path, ids: Path, rng):
    if kind == "random-payload":
        data = bytearray(y.read_bytes())
        hl = len(data) - int(np.prod(np.load(y, mmap_mode="r").shape)) * 4
        data[hl:] = rng.standard_normal((len(data) - hl) // 4).astype(np.float32).tobytes()
        _replace(y, bytes(data))
    elif kind == "zero-payload":
        data = bytearray(y.read_bytes())
        hl = len(data) - int(np.prod(np.load(y, mmap_mode="r").shape)) * 4
        data[hl:] = bytes(len(data) - hl)
        _replace(y, bytes(data))
    elif kind == "one-byte-flipped":
        data = bytearray(y.read_bytes())
        data[len(data) // 2] ^= 0x40
        _replace(y, bytes(data))
    elif kind == "ids-random-payload":
        data = bytearray(ids.read_bytes())
        data[-8:] = np.int64(7).tobytes()
        _replace(ids, bytes(data))
    elif kind == "sidecar-deleted":
        C.checksum_path(y).unlink()
    elif kind == "sidecar-garbage":
        _replace(C.checksum_path(y), b"{not json")
    elif kind == "sidecar-of-another-file":
        _replace(C.checksum_path(y), C.checksum_path(ids).read_bytes())
    elif kind == "truncated":
        _replace(y, y.read_bytes()[: y.stat().st_size // 2])
    elif kind == "garbage":
        _replace(y, b"garbage" * 50)
    elif kind == "ids-garbage":
        _replace(ids, b"\x93NUMPY garbage")
    else:
        raise ValueError(kind)


DAMAGES = _cases(42, [(k, k) for k in ("random-payload", "zero-payload", "one-byte-flipped", "ids-random-payload",
                                       "sidecar-deleted", "sidecar-garbage", "sidecar-of-another-file")])
DAMAGES += _cases(41, [(k, k) for k in ("truncated", "garbage", "ids-garbage")])


@pytest.mark.parametrize("case", DAMAGES)
def test_damaged_betas_entry_is_recomputed(case, tiny_root, tmp_path, clean_betas, rng):
    cache = tmp_path / "cache"
    _betas(tiny_root, cache)
    y, ids = _entry(cache)
    _damage(case, y, ids, rng)
    with pytest.warns(C.CorruptCacheWarning, match=r"subj01_fsaverage_\w+(_ids)?\.npy"):
        Y, got = _betas(tiny_root, cache)
    np.testing.assert_array_equal(np.asarray(Y), clean_betas[0])
    np.testing.assert_array_equal(got, clean_betas[1])
    _assert_hit(tiny_root, cache, clean_betas)


SAMPLED = _cases(42, [("large-first-block", ("first", None, True)),
                      ("large-last-block", ("last", None, True)),
                      ("large-middle-block-full-check", ("middle", True, True)),
                      ("large-middle-block-rotation", ("middle", "rotate", True)),
                      ("large-size-changed", ("append", None, True)),
                      ("small-any-block", ("middle-small", None, True))])


@pytest.mark.parametrize("case", SAMPLED)
def test_checksums_of_large_entries(case, tmp_path, monkeypatch):
    """Large files are not re-read on open: first, last and rotating blocks are; a full check on request."""
    where, full, detected = case
    monkeypatch.setattr(C, "CHECKSUM_BLOCK", 4096)
    monkeypatch.setattr(C, "VERIFY_FULL_MAX", 4096 * 4 if where != "middle-small" else 1 << 20)
    p = tmp_path / "big.npy"
    a = np.arange(4096 * 10, dtype=np.float32)  # 160 KiB: 41 blocks
    C.write_npy(p, a)
    assert C.verify_checksums(p) is None
    n = -(-p.stat().st_size // 4096)
    data = bytearray(p.read_bytes())
    if where == "append":
        data += b"\0" * 8
    else:
        b = {"first": 0, "last": n - 1, "middle": n // 2, "middle-small": n // 2}[where]
        data[b * 4096 + 100] ^= 1
    _replace(p, bytes(data))
    if full == "rotate":
        reasons = [C.verify_checksums(p) for _ in range(n)]
        assert any(r and "block" in r for r in reasons), "rotation never reached the damaged block"
        assert reasons[0] is None or "block" in reasons[0]
    else:
        reason = C.verify_checksums(p, full=full)
        assert (reason is not None) is detected, reason
        with pytest.warns(C.CorruptCacheWarning, match="big.npy"):
            assert C.load_npy(p, verify=full) is None
        assert not p.exists() and not C.checksum_path(p).exists()


# ---- row 43: the betas key covers every input
def _mutate_key(kind, root: Path, monkeypatch):
    sub = root / "nsddata_betas/ppdata/subj01"
    if kind in ("expdesign-same-size-same-mtime", "responses-same-size-same-mtime"):
        f = (root / "nsddata/experiments/nsd/nsd_expdesign.mat") if kind.startswith("expdesign") \
            else (root / "nsddata/ppdata/subj01/behav/responses.tsv")
        data = bytearray(f.read_bytes())
        data[-2] ^= 0x01
        _replace(f, bytes(data))
    elif kind == "session-file-replaced-same-size-same-mtime":
        f = sorted(sub.rglob("*session01*"))[0]
        _replace(f, f.read_bytes())  # same bytes, new inode: the identity of a replaced file
    elif kind == "session-file-touched":
        f = sorted(sub.rglob("*session01*"))[0]
        st = f.stat()
        data = f.read_bytes()
        f.unlink()
        f.write_bytes(data)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    elif kind == "cache-version":
        monkeypatch.setitem(C.CACHE_VERSIONS, "betas", C.CACHE_VERSIONS["betas"] + 1)
    else:
        raise ValueError(kind)


KEY_FILES = _cases(43, [(k, k) for k in ("expdesign-same-size-same-mtime", "responses-same-size-same-mtime",
                                         "session-file-replaced-same-size-same-mtime", "session-file-touched",
                                         "cache-version")])


@pytest.mark.parametrize("case", KEY_FILES)
def test_betas_key_covers_every_input_file(case, tree_copy, monkeypatch):
    root = tree_copy()
    nsd = NSD(root)
    plan = nsd._betas_plan("subj01", "fsaverage", None, True, 3, None)
    args = (plan[0], "fsaverage", plan[2], True, 3, plan[1])
    before = nsd._betas_key(*args)
    assert NSD(root)._betas_key(*args) == before  # deterministic
    _mutate_key(case, root, monkeypatch)
    assert NSD(root)._betas_key(*args) != before


KEY_ARGS = _cases(43, [("arg-zscore", {"zscore": False}), ("arg-min-repeats", {"min_repeats": 1}),
                       ("arg-sessions", {"sessions": [1, 2]}), ("arg-space", {"space": "func1pt8mm"}),
                       ("arg-roi", {"roi": ("streams", "ventral")})])


@pytest.mark.parametrize("case", KEY_ARGS)
def test_betas_key_covers_every_argument(case, tiny_root):
    nsd = NSD(tiny_root)
    assert nsd.betas_key("subj01", **case) != nsd.betas_key("subj01")


EDITED = _cases(43, [("expdesign-edited-after-caching-returns-new-averages", "responses")])


@pytest.mark.parametrize("case", EDITED)
def test_edited_design_is_not_served_from_the_cache(case, tree_copy, tmp_path):
    """responses.tsv loses its last trial's repeat (one session dropped): a cached call must
    equal the uncached call on the edited data, not the old entry."""
    root = tree_copy()
    cache = tmp_path / "cache"
    old, _ = _betas(root, cache)
    old = np.array(old)
    f = root / "nsddata/ppdata/subj01/behav/responses.tsv"
    lines = f.read_text().splitlines(keepends=True)
    header = lines[0]
    sess_col = header.rstrip("\n").split("\t").index("SESSION")
    kept = [ln for ln in lines[1:] if ln.split("\t")[sess_col].strip() != "3"]
    f.unlink()
    f.write_text(header + "".join(kept))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new_cached, ids_c = NSD(root, cache_dir=cache).betas("subj01", sessions=[1, 2], progress=False)
        new_clean, ids_u = NSD(root).betas("subj01", sessions=[1, 2], cache=False, progress=False)
    np.testing.assert_array_equal(np.asarray(new_cached), np.asarray(new_clean))
    np.testing.assert_array_equal(ids_c, ids_u)


# ---- row 44: two processes computing the same betas
CONCURRENT = _cases(44, [("second-waits-for-first", "sequenced"), ("both-at-once", "together")])


@pytest.mark.parametrize("case", CONCURRENT)
def test_two_processes_compute_the_betas_once(case, tiny_root, tmp_path, clean_betas):
    cache = tmp_path / "cache"
    log = tmp_path / "computations.log"
    go = tmp_path / "go"
    env = {"GO_FILE": str(go)} if case == "sequenced" else {}
    a, marker_a, out_a = _spawn(tmp_path, tiny_root, cache, "count", env, tag="a")
    if case == "sequenced":
        # A computes (holding the lock) until B has started; B must then wait and read A's entry
        t0 = time.monotonic()
        while not (log.exists() or marker_a.exists()):
            if a.poll() is not None:
                raise AssertionError(a.stderr.read())
            assert time.monotonic() - t0 < 240
            time.sleep(0.05)
    b, marker_b, out_b = _spawn(tmp_path, tiny_root, cache, "count", env, tag="b")
    if case == "sequenced":
        time.sleep(3.0)  # lets B reach the lock; the assertions hold whatever the timing
        go.write_text("go")
    for p in (a, b):
        assert p.wait(timeout=300) == 0, p.stderr.read()
    computed = sum(m.read_text().count("compute") for m in (marker_a, marker_b) if m.exists())
    assert computed == 1, f"the betas were computed {computed} times"
    for out in (out_a, out_b):
        np.testing.assert_array_equal(np.load(out), clean_betas[0])
    assert not _temps(cache) and not list((cache / "betas").glob(".*.lock"))


# ---- row 45: read-only cache folders
READONLY = _cases(45, [("betas-readonly-empty-tmpfs", ("betas", "tmpfs", False)),
                       ("betas-readonly-with-entry-tmpfs", ("betas", "tmpfs", True)),
                       ("betas-readonly-simulated", ("betas", "simulated", False)),
                       ("embed-readonly-empty-tmpfs", ("embed", "tmpfs", False)),
                       ("embed-readonly-with-entry-tmpfs", ("embed", "tmpfs", True)),
                       ("embed-readonly-simulated", ("embed", "simulated", False))])


@pytest.mark.parametrize("case", READONLY)
def test_readonly_cache_runs_uncached(case, tiny_root, tmp_path, tmpfs, monkeypatch, request):
    what, backend, with_entry = case
    if what == "embed":
        from brainllm_utils.embeddings import embed_sentences

        minilm = request.getfixturevalue("minilm")
        clean = request.getfixturevalue("clean_embed")

        def run(cache):
            return embed_sentences(SENTS, model=minilm, cache=cache)
    else:
        clean = request.getfixturevalue("clean_betas")[0]

        def run(cache):
            return np.asarray(_betas(tiny_root, cache)[0])
    if backend == "tmpfs":
        d = tmpfs("16m")
        if d is None:
            pytest.skip("mount -t tmpfs is not allowed here (the simulated case covers it)")
        if with_entry:
            run(d)
        _remount_ro(d)
    else:
        d = tmp_path / "ro"
        d.mkdir()
        real_open = os.open

        def ro_open(path, flags, *a, **k):
            if str(path).startswith(str(d)) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real_open(path, flags, *a, **k)

        monkeypatch.setattr(os, "open", ro_open)
        monkeypatch.setattr(P.Path, "mkdir", _ro_mkdir(d, P.Path.mkdir))
    C._unwritable.clear()
    if with_entry:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = run(d)  # a hit: read-only is enough, no warning
    else:
        with pytest.warns(C.CacheUnavailableWarning, match=f"{d}.*cannot be written"):
            got = run(d)
        with warnings.catch_warnings():
            warnings.simplefilter("error", C.CacheUnavailableWarning)
            run(d)  # warned once per folder
    np.testing.assert_allclose(got, clean, atol=1e-6 if what == "embed" else 0)


UNCREATABLE = _cases(45, [("betas-cache-root-uncreatable", "betas"),
                          ("embed-cache-root-uncreatable", "embed")])


@pytest.mark.parametrize("case", UNCREATABLE)
def test_uncreatable_cache_root_runs_uncached(case, tiny_root, tmp_path, monkeypatch, request):
    """``$BRAINLLM_CACHE`` that cannot be created (here: below a file; a read-only parent
    fails the same way) warns once naming it and the work runs uncached, not a raw OSError."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BRAINLLM_CACHE", str(blocker / "cache"))
    C._unwritable.clear()
    if case == "embed":
        from brainllm_utils.embeddings import embed_sentences

        minilm = request.getfixturevalue("minilm")
        clean = request.getfixturevalue("clean_embed")

        def run():
            return embed_sentences(SENTS, model=minilm, cache=True)
    else:
        clean = request.getfixturevalue("clean_betas")[0]

        def run():
            return np.asarray(NSD(tiny_root).betas("subj01", progress=False)[0])
    with pytest.warns(C.CacheUnavailableWarning, match=r"a-file/cache cannot be created"):
        got = run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", C.CacheUnavailableWarning)
        again = run()  # warned once
    np.testing.assert_allclose(got, clean, atol=1e-6 if case == "embed" else 0)
    np.testing.assert_allclose(again, clean, atol=1e-6 if case == "embed" else 0)
    assert not (blocker.parent / "cache").exists()


def _ro_mkdir(d, real):
    def mkdir(self, *a, **k):
        if str(self).startswith(str(d)) and not self.exists():
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **k)

    return mkdir


# ---- row 46: disk full while writing the betas
FULL = _cases(46, [("betas-full-tmpfs", "tmpfs"), ("betas-full-simulated", "simulated")])


@pytest.mark.parametrize("case", FULL)
def test_full_disk_betas_fall_back_uncached(case, tiny_root, tmp_path, tmpfs, monkeypatch, clean_betas):
    d = _full_folder(case, tmpfs, tmp_path, monkeypatch, leave=0)
    (d / "betas").mkdir(exist_ok=True)
    with pytest.warns(C.CacheUnavailableWarning, match=r"bytes needed.*without the cache"):
        Y, ids = _betas(tiny_root, d)
    np.testing.assert_array_equal(np.asarray(Y), clean_betas[0])
    assert not _temps(d) and not list((d / "betas").glob("*.npy"))


NO_SIGBUS = _cases(46, [("betas-full-tmpfs-disk-usage-lies-no-sigbus", "lying-disk-usage")])


@pytest.mark.parametrize("case", NO_SIGBUS)
def test_full_disk_never_sigbus(case, tiny_root, tmp_path, tmpfs, clean_betas):
    """The free-space check is bypassed: posix_fallocate must fail cleanly (before: SIGBUS)."""
    d = tmpfs("1m")
    if d is None:
        pytest.skip("mount -t tmpfs is not allowed here")
    (d / "betas").mkdir()
    _fill(d)
    proc, _, out = _spawn(tmp_path, tiny_root, d, case)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"rc {proc.returncode} (-7 is SIGBUS):\n{err[-3000:]}"
    assert "without the cache" in err and "bytes needed" in err
    np.testing.assert_array_equal(np.load(out), clean_betas[0])
    assert not _temps(d)


ALLOC = _cases(46, [("allocate-tmpfs", "tmpfs"), ("allocate-simulated", "simulated"),
                    ("check-free-space-message", "message"), ("scratch-falls-back-to-memory", "scratch"),
                    ("ids-write-enospc-keeps-result", "ids")])


@pytest.mark.parametrize("case", ALLOC)
def test_full_disk_is_a_python_error(case, tiny_root, tmp_path, tmpfs, monkeypatch, clean_betas):
    if case in ("allocate-tmpfs", "allocate-simulated"):
        d = _full_folder(case.split("-")[1], tmpfs, tmp_path, monkeypatch, leave=8192)
        with P.atomic_path(d / "x.npy") as tmp:
            with pytest.raises(P.CacheFullError, match=r"bytes needed"):
                P.allocate_npy(tmp, (1000, 1000))
        assert not (d / "x.npy").exists() and not _temps(d)
    elif case == "message":
        with pytest.raises(P.CacheFullError, match=r"10,000,000,000,000,000,000 bytes needed, [\d,]+ free") as ei:
            P.check_free_space(tmp_path, 10**19, "betas")
        assert ei.value.errno == errno.ENOSPC and isinstance(ei.value, OSError)
    elif case == "scratch":
        d = _full_folder("simulated", tmpfs, tmp_path, monkeypatch)
        with pytest.warns(UserWarning, match=r"holding it in memory"):
            a = P.scratch_npy(d, (50, 7))
        assert a.shape == (50, 7) and not a.any() and not _temps(d)
    else:  # the ids file cannot be written: the result stands, the half entry goes
        cache = tmp_path / "cache"
        from brainllm_utils.nsd import _betas as B

        def no_room(p, a):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(B, "write_npy", no_room)
        with pytest.warns(C.CacheUnavailableWarning, match="could not complete the betas cache entry"):
            Y, _ = _betas(tiny_root, cache)
        np.testing.assert_array_equal(np.asarray(Y), clean_betas[0])
        assert not list((cache / "betas").rglob("*"))


# ---- row 47/48: full disk in embed_sentences
EMBED_FULL = _cases(47, [("embed-full-tmpfs", "tmpfs"), ("embed-claim-enospc-simulated", "claim"),
                         ("embed-shard-enospc-simulated", "shard")])


@pytest.mark.parametrize("case", EMBED_FULL)
def test_full_disk_embed_falls_back(case, minilm, tmp_path, tmpfs, monkeypatch, clean_embed):
    from brainllm_utils.embeddings import embed_sentences
    from brainllm_utils.features import embeddings as E

    if case == "tmpfs":
        d = tmpfs("1m")
        if d is None:
            pytest.skip("mount -t tmpfs is not allowed here")
        _fill(d)
    else:
        d = tmp_path / "cache"

        def no_room(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(E._SentenceStore, "claim" if case == "claim" else "add", no_room)
    with pytest.warns(C.CacheUnavailableWarning, match="No space left|no room|not enough free space"):
        X = embed_sentences(SENTS, model=minilm, cache=d)
    np.testing.assert_allclose(X, clean_embed, atol=1e-6)
    assert not _temps(d) and not list(Path(d).rglob("claim-*"))


# ---- row 48: a nearly full disk in embed_sentences: warnings at most, the correct result, and a
# rerun on the same folder (whatever part of the entry was written) is correct too
EMBED_NEARLY_FULL = _cases(48, [(f"embed-nearly-full-tmpfs-{k}k", ("tmpfs", k * 1024)) for k in (2, 8, 32, 128)]
                           + [("embed-list-write-enospc-simulated", ("list", 0)),
                              ("embed-nearly-full-free-space-check-simulated", ("simulated", 8192))])


@pytest.mark.parametrize("case", EMBED_NEARLY_FULL)
def test_nearly_full_disk_embed_warns_and_is_correct(case, minilm, tmp_path, tmpfs, monkeypatch, clean_embed):
    from brainllm_utils.embeddings import embed_sentences
    from brainllm_utils.features import embeddings as E

    how, leave = case
    if how == "tmpfs":
        d = tmpfs("1m")
        if d is None:
            pytest.skip("mount -t tmpfs is not allowed here (the simulated cases cover it)")
        _fill(d, leave)
    elif how == "simulated":
        d = _full_folder("simulated", tmpfs, tmp_path, monkeypatch, leave=leave)
    else:
        d = tmp_path / "cache"

        def no_room(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(E, "write_npy", no_room)
    for attempt in ("first", "rerun"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            X = embed_sentences(SENTS, model=minilm, cache=d)
        bad = [w for w in caught if issubclass(w.category, (RuntimeWarning, ResourceWarning))
               or (issubclass(w.category, UserWarning) and not issubclass(w.category, C.CacheUnavailableWarning)
                   and "memory" not in str(w.message))]
        assert not bad, (attempt, [str(w.message) for w in bad])
        if how == "list" and attempt == "first":
            assert any("could not write embedding cache" in str(w.message) for w in caught)
        np.testing.assert_allclose(X, clean_embed, atol=1e-6, err_msg=attempt)
        assert not _temps(d) and not list(Path(d).rglob("claim-*")), attempt


# ---- rows 49/50: damaged embedding entries (list and shards)
EMBED_DAMAGE = _cases(50, [("shard-random-payload", "shard-vecs"), ("shard-keys-random", "shard-keys"),
                           ("shard-sidecar-missing", "shard-sidecar"), ("list-random-payload", "list")])


@pytest.mark.parametrize("case", EMBED_DAMAGE)
def test_damaged_embedding_entry_is_recomputed(case, minilm, tmp_path, clean_embed, rng):
    from brainllm_utils.embeddings import embed_sentences

    cache = tmp_path / "cache"
    embed_sentences(SENTS, model=minilm, cache=cache)
    lists = [p for p in cache.rglob("*.npy") if "sentences-" not in str(p)]
    shards = sorted(cache.rglob("shard-*.npy"))
    vecs = [p for p in shards if not p.name.endswith(".keys.npy")][0]
    keys = vecs.with_name(vecs.stem + ".keys.npy")
    if case != "list":
        for p in lists:  # force the per-sentence store to be read
            p.unlink()
            C.checksum_path(p).unlink()
    if case == "shard-vecs":
        data = bytearray(vecs.read_bytes())
        n = np.load(vecs, mmap_mode="r").size * 4
        data[-n:] = rng.uniform(-0.1, 0.1, n // 4).astype(np.float32).tobytes()
        _replace(vecs, bytes(data))
    elif case == "shard-keys":
        data = bytearray(keys.read_bytes())
        data[-16:] = bytes(rng.integers(0, 256, 16, dtype=np.uint8))
        _replace(keys, bytes(data))
    elif case == "shard-sidecar":
        C.checksum_path(vecs).unlink()
    else:
        p = lists[0]
        data = bytearray(p.read_bytes())
        n = np.load(p, mmap_mode="r").size * 4
        data[-n:] = rng.uniform(-0.1, 0.1, n // 4).astype(np.float32).tobytes()
        _replace(p, bytes(data))
    with pytest.warns(C.CorruptCacheWarning, match=r"(shard-\w+(\.keys)?|[0-9a-f]{64})\.npy"):
        X = embed_sentences(SENTS, model=minilm, cache=cache)
    np.testing.assert_allclose(X, clean_embed, atol=1e-6)


ORPHANS = _cases(49, [("orphan-shard-old-removed", 48.0), ("orphan-shard-young-kept", 0.0)])


@pytest.mark.parametrize("case", ORPHANS)
def test_orphan_shard_vectors(case, tmp_path):
    """A writer killed between a shard's vectors and its keys leaves vectors nobody lists."""
    from brainllm_utils.features import embeddings as E

    store = E._SentenceStore(tmp_path / "sentences-x", 4)
    store.add(np.array([b"k" * 16], dtype="S16"), np.ones((1, 4), np.float32))
    orphan = store.folder / "shard-deadbeef.npy"
    C.write_npy(orphan, np.ones((1, 4), np.float32))
    if case:
        t = time.time() - case * 3600
        os.utime(orphan, (t, t))
    found, rows = store.lookup(np.array([b"k" * 16], dtype="S16"))
    assert found.all() and rows[0, 0] == 1.0
    assert orphan.exists() is (case == 0.0)
    assert C.checksum_path(orphan).exists() is (case == 0.0)


# ---- minor: cache files get the umask's permissions (not mkstemp's 0600)
PERMS = _cases(40, [("perm-save-npy", "npy"), ("perm-write-text", "text"), ("perm-betas-entry", "betas")])


@pytest.mark.parametrize("case", PERMS)
def test_cache_files_have_umask_permissions(case, tiny_root, tmp_path):
    old = os.umask(0o022)
    try:
        if case == "npy":
            files = [C.write_npy(tmp_path / "a.npy", np.ones(3))]
            files.append(C.checksum_path(files[0]))
        elif case == "text":
            files = [P.atomic_write_text(tmp_path / "a.json", "{}")]
        else:
            _betas(tiny_root, tmp_path / "cache")
            files = [p for p in (tmp_path / "cache" / "betas").iterdir()]
        assert files
        for f in files:
            assert f.stat().st_mode & 0o777 == 0o644, (f, oct(f.stat().st_mode))
    finally:
        os.umask(old)


def test_case_count():
    assert len(CASES) >= 45, len(CASES)
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids) and all(i.startswith("row") for i in ids)


# ---- row 41 (continued): JSON entries, the betas' partial-data record and training checkpoints
# carry checksums too: a change into other valid content is found, not used
JSON_DAMAGES = _cases(41, [(f"json-entry-{k}", k) for k in ("valid-json-edit", "garbage", "sidecar-deleted")])


@pytest.mark.parametrize("case", JSON_DAMAGES)
def test_json_entry_changed_is_recomputed(case, tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"tags": [["a", "DET"], ["cat", "NOUN"]]}

    first = C.cached_json("pos_tags", "k" * 24, compute, cache=tmp_path)
    path = tmp_path / "pos_tags" / ("k" * 24 + ".json")
    if case == "valid-json-edit":
        _replace(path, path.read_text().replace("NOUN", "VERB").encode())
    elif case == "garbage":
        _replace(path, b"\x00{garbage")
    else:
        C.checksum_path(path).unlink()
    with pytest.warns(C.CorruptCacheWarning, match=r"kkkk\.json"):
        again = C.cached_json("pos_tags", "k" * 24, compute, cache=tmp_path)
    assert again == first and len(calls) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert C.cached_json("pos_tags", "k" * 24, compute, cache=tmp_path) == first and len(calls) == 2


RECORD_DAMAGES = _cases(41, [(f"partial-record-{k}", k) for k in ("missing", "valid-json-edit", "emptied",
                                                                    "garbage")])


@pytest.mark.parametrize("case", RECORD_DAMAGES)
def test_betas_partial_data_record_damaged_is_recomputed_and_warned_again(case, tree_copy, tmp_path):
    """The record of left-out sessions is part of the betas entry: without it a cache hit would
    drop the PartialDataWarning and the data report's row, silently."""
    import nibabel as nib

    from brainllm_utils.nsd import PartialDataWarning

    root = tree_copy()
    for hemi in ("lh", "rh"):
        f = root / f"nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/{hemi}.betas_session02.mgh"
        img = nib.load(f)
        data = np.full(img.shape, np.nan, dtype=np.asarray(img.dataobj).dtype)
        f.unlink()
        nib.save(nib.MGHImage(data, img.affine), f)
    cache = tmp_path / "cache"
    with pytest.warns(PartialDataWarning, match="session 2"):
        clean, ids = NSD(root, cache_dir=cache).betas("subj01", progress=False)
    clean = np.array(clean)
    rec = next((cache / "betas").glob("*_partial.json"))
    if case == "missing":
        rec.unlink()
    elif case == "valid-json-edit":
        _replace(rec, rec.read_text().replace("session 2", "session 9").encode())
    elif case == "emptied":
        _replace(rec, b"[]")
    else:
        _replace(rec, b"[{garbage")
    nsd = NSD(root, cache_dir=cache)
    with pytest.warns(PartialDataWarning, match="session 2") as got:
        Y, _ = nsd.betas("subj01", progress=False)
    assert any(issubclass(w.category, C.CorruptCacheWarning) and "subj01_fsaverage" in str(w.message)
               for w in got), [str(w.message) for w in got]
    np.testing.assert_array_equal(np.asarray(Y), clean)
    report = nsd.data_report()
    assert list(report["kind"]) == ["session-all-nan"] and report["session"].tolist() == [2]
    nsd = NSD(root, cache_dir=cache)  # the recomputed entry replays its record
    with pytest.warns(PartialDataWarning, match="session 2"):
        nsd.betas("subj01", progress=False)
    assert len(nsd.data_report()) == 1


CHECKPOINT_DAMAGES = _cases(41, [("checkpoint-tensor-byte-flipped", "flip"),
                                 ("checkpoint-sidecar-deleted", "sidecar")])


@pytest.mark.parametrize("case", CHECKPOINT_DAMAGES)
def test_damaged_training_checkpoint_is_not_resumed(case, tmp_path):
    """A byte flipped inside a tensor still loads with torch.load: only the checksum finds it."""
    pytest.importorskip("torch")
    from brainllm_utils import vision

    cfg = vision.BLTConfig(n_layers=3, width=4, image_size=16, n_steps=3, out_dim=6, stem_kernel=3)
    tc = vision.TrainConfig(epochs=2, batch_size=4, lr=1e-2, warmup_epochs=0)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (12, 20, 20, 3), dtype=np.uint8)
    y = rng.standard_normal((12, 6)).astype(np.float32)
    full = vision.train_network(imgs, y, cfg, tc, seed=1, progress=False, checkpoint_dir=tmp_path / "a")
    vision.train_network(imgs, y, cfg, tc, seed=1, progress=False, checkpoint_dir=tmp_path / "b", max_epochs=1)
    ck = tmp_path / "b" / "epoch_001.pt"
    if case == "flip":
        data = bytearray(ck.read_bytes())
        data[len(data) // 2] ^= 0x01
        _replace(ck, bytes(data))
        with pytest.raises(ValueError, match="checksum mismatch"):
            vision.load_checkpoint(ck)
    else:
        C.checksum_path(ck).unlink()
    with pytest.warns(C.CorruptCacheWarning, match="epoch_001.pt"):
        again = vision.train_network(imgs, y, cfg, tc, seed=1, progress=False, checkpoint_dir=tmp_path / "b")
    assert again.weights_hash == full.weights_hash  # trained from the start, not from the damage
