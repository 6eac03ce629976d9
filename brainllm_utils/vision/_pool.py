"""The training pool of the image-to-LLM networks: COCO images no subject saw, their captions,
multi-hot categories and training targets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .._utils.cache import cache_key, file_identity, load_npy, resolve_cache, save_npy
from .._utils.docs import fill_doc
from .._utils.numeric import check_finite, check_int
from .._utils.paths import get_data_home
from ..nsd.layout import ANNOTATIONS, COCO_DIR, STIM_INFO

__all__ = ["pool_coco_ids", "load_coco_images", "load_coco_annotations", "TrainingPool",
           "load_training_pool", "make_targets", "PoolImages", "POOL_MEMORY_BUDGET"]

#: Default byte budget of pool images held in memory (:func:`load_training_pool`,
#: :meth:`TrainingPool.dataset`): above it the images stream from their JPEG files. The
#: default sandbox's 2,000 images at 96 px take 55 MB; real COCO's 50,287 pool images at
#: 256 px would take 9.9 GB, so they stream.
POOL_MEMORY_BUDGET = 1 << 30


def _stim_coco_ids(root: Path) -> set[int]:
    import pandas as pd

    p = root / STIM_INFO
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: the NSD stimulus table is needed to exclude NSD images")
    return set(int(c) for c in pd.read_csv(p, usecols=["cocoId"])["cocoId"])


@fill_doc
def pool_coco_ids(root=None, splits: Sequence[str] = ("train2017", "val2017")) -> tuple[np.ndarray, np.ndarray]:
    """COCO images on disk that no subject saw: ``(coco_ids int64, splits str)``, sorted by id.

    Looks for ``<root>/coco/<split>/<cocoId:012d>.jpg`` and drops every cocoId listed in
    ``nsd_stim_info_merged.csv`` (the 73k NSD images).

    Parameters
    ----------
    %(root_optional)s
    splits : sequence of str, default=("train2017", "val2017")
        COCO splits to look in (missing folders are skipped).

    Returns
    -------
    coco_ids : ndarray of int64 of shape (n_pool,)
        The pool's cocoIds, sorted.
    splits : ndarray of str of shape (n_pool,)
        The split folder of each image.

    Raises
    ------
    FileNotFoundError
        When ``nsd_stim_info_merged.csv`` is missing or no pool image is found.
    """
    root = get_data_home(root)
    nsd = _stim_coco_ids(root)
    ids, sp = [], []
    for split in splits:
        folder = root / COCO_DIR / split
        if not folder.is_dir():
            continue
        for p in folder.glob("*.jpg"):
            try:
                cid = int(p.stem)
            except ValueError:
                continue
            if cid not in nsd:
                ids.append(cid)
                sp.append(split)
    if not ids:
        raise FileNotFoundError(
            f"no training-pool images under {root / COCO_DIR}/{{{','.join(splits)}}}/*.jpg "
            "(unpack COCO 2017 train/val images there)")
    ids_a = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids_a, kind="stable")
    return ids_a[order], np.asarray(sp)[order]


def _square(im, size: int | None) -> np.ndarray:
    """A PIL image (or uint8 ``(H, W, 3)`` array) → uint8 RGB array: centre square crop of the
    shorter side, bicubic resize to ``size`` (``None``: native, no crop). One function for the
    decoded JPEG and for images already in memory, so both give the same pixels."""
    from PIL import Image

    if isinstance(im, np.ndarray):
        if size is None or im.shape[:2] == (size, size):
            return im
        im = Image.fromarray(im)
    im = im.convert("RGB")
    if size is not None:
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
        if side != size:
            im = im.resize((size, size), Image.BICUBIC, reducing_gap=None)
    return np.asarray(im, dtype=np.uint8)


def _load_one(path, size: int | None) -> np.ndarray:
    """Decode one JPEG (any size) → uint8 ``(size, size, 3)`` (:func:`_square`)."""
    from PIL import Image

    with Image.open(path) as im:
        return _square(im, size)


def _native_size(paths) -> tuple[int, int] | None:
    """The common ``(height, width)`` of the files (headers only), ``None`` when they differ
    (stops at the first that differs)."""
    from PIL import Image

    first = None
    for p in paths:
        with Image.open(p) as im:
            hw = (im.size[1], im.size[0])
        if first is None:
            first = hw
        elif hw != first:
            return None
    return first


@fill_doc
def load_coco_images(root, coco_ids, splits, size: int | None = None, cache: bool = True,
                     progress: bool = False) -> np.ndarray:
    """Read COCO JPEGs as uint8 ``(n, size, size, 3)`` (centre square crop, bicubic resize).

    ``size=None`` keeps the native size (all images must then share it). With ``cache``,
    the array is stored in the one cache (kind ``"vision_images"``) keyed by the ids, splits,
    size and the files' identities (path, size, modification time).

    Parameters
    ----------
    %(root)s
        The images are ``<root>/coco/<split>/<cocoId:012d>.jpg``.
    coco_ids : array-like of int of shape (n_images,)
        The images, in the order returned.
    splits : str or array-like of str of shape (n_images,)
        The split folder of each image (one string: all of them).
    size : int, optional
        Side of the output after a centre square crop; ``None``: native size.
    %(cache)s
    %(progress)s

    Returns
    -------
    images : ndarray of uint8 of shape (n_images, size, size, 3)
        RGB images, in the order of ``coco_ids``.
    """
    return _load_images(root, coco_ids, splits, size, cache, progress)[0]


def _load_images(root, coco_ids, splits, size, cache, progress, want_key: bool = False):
    """:func:`load_coco_images`, and the images' cache key (computed once: it stats every file)
    when the cache is used or ``want_key``; ``None`` otherwise."""
    root = get_data_home(root)
    coco_ids = np.asarray(coco_ids, dtype=np.int64).ravel()
    splits = np.broadcast_to(np.asarray(splits), coco_ids.shape)
    paths = [root / COCO_DIR / str(s) / f"{int(c):012d}.jpg" for c, s in zip(coco_ids, splits)]
    folder = resolve_cache(cache, "vision_images")
    key = images_key(coco_ids, splits, size, paths) if folder is not None or want_key else None
    path = None
    if folder is not None:
        path = folder / f"{key}.npy"
        shape = (coco_ids.size, size, size, 3) if size is not None else None
        hit = load_npy(path, shape=shape, dtype=np.uint8, rows=coco_ids.size, ndim=4)
        if hit is not None:
            return hit, key
    from tqdm.auto import tqdm

    out = None
    for i, p in enumerate(tqdm(paths, desc="COCO images", disable=not progress, leave=False)):
        img = _load_one(p, size)
        if out is None:  # filled in place: never a list of arrays plus their stacked copy
            out = np.empty((len(paths), *img.shape), np.uint8)
        elif img.shape != out.shape[1:]:
            raise ValueError(
                f"{p} is {img.shape[1]}×{img.shape[0]} px but {paths[0]} is {out.shape[2]}×{out.shape[1]}: "
                "images of different sizes need a common size (size=..., or stream them with "
                "TrainingPool.dataset / PoolImages)")
        out[i] = img
    if out is None:
        out = np.zeros((0, size or 0, size or 0, 3), np.uint8)
    if path is not None:
        save_npy(path, out)
    return out, key


def images_key(coco_ids, splits, size, paths) -> str:
    """Cache key of pool images: ids, splits, size and every file's identity.

    Parameters
    ----------
    coco_ids : array-like of int of shape (n_images,)
        The images' cocoIds.
    splits : sequence of str of length n_images
        Their split folders.
    size : int or None
        The output side (``None``: native).
    paths : sequence of path-like
        The JPEG files (identified by path, size and modification time).

    Returns
    -------
    key : str
        Hex key (:func:`~brainllm_utils._utils.cache.cache_key`, kind ``"vision_images"``).
    """
    return cache_key("vision_images", np.asarray(coco_ids, dtype=np.int64), [str(s) for s in splits],
                     size, [file_identity(p) for p in paths])


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (COCO 2017 annotations)")
    return json.loads(path.read_text())


@fill_doc
def load_coco_annotations(root, coco_ids, splits) -> tuple[list[list[str]], np.ndarray, list[str]]:
    """Captions and multi-hot categories of COCO images.

    Parameters
    ----------
    %(root)s
        Annotations are read from ``<root>/nsddata_stimuli/stimuli/nsd/annotations``.
    coco_ids : array-like of int of shape (n_images,)
        The images, in the order returned.
    splits : str or array-like of str of shape (n_images,)
        The COCO split of each image (``"train2017"`` or ``"val2017"``).

    Returns
    -------
    captions : list of list of str
        Each image's captions, in caption id order, stripped.
    multihot : ndarray of float32 of shape (n_images, n_categories)
        Columns ordered by category id (as :meth:`NSD.categories` and the ``multihot``
        feature space).
    names : list of str
        The category names.

    Raises
    ------
    ValueError
        For an image without captions.
    """
    root = get_data_home(root)
    coco_ids = np.asarray(coco_ids, dtype=np.int64).ravel()
    splits = np.broadcast_to(np.asarray(splits), coco_ids.shape)
    folder = root / ANNOTATIONS
    caps: dict[int, list[tuple[int, str]]] = {}
    inst: dict[int, set[int]] = {}
    categories = None
    for split in sorted(set(map(str, splits))):
        for ann in _read_json(folder / f"captions_{split}.json")["annotations"]:
            caps.setdefault(int(ann["image_id"]), []).append((int(ann["id"]), ann["caption"].strip()))
        data = _read_json(folder / f"instances_{split}.json")
        categories = categories or data.get("categories")
        for ann in data["annotations"]:
            inst.setdefault(int(ann["image_id"]), set()).add(int(ann["category_id"]))
    if categories is None:
        categories = _read_json(folder / "instances_train2017.json")["categories"]
    cats = sorted(categories, key=lambda c: c["id"])
    col = {c["id"]: j for j, c in enumerate(cats)}
    captions, multihot = [], np.zeros((coco_ids.size, len(cats)), np.float32)
    for i, cid in enumerate(coco_ids):
        cs = caps.get(int(cid))
        if not cs:
            raise ValueError(f"cocoId {cid} has no captions in {folder}")
        captions.append([c for _, c in sorted(cs)])
        for k in inst.get(int(cid), ()):
            multihot[i, col[k]] = 1.0
    return captions, multihot, [c["name"] for c in cats]


class PoolImages:
    """Pool images as a map-style dataset, read by a :class:`torch.utils.data.DataLoader`.

    Item ``i`` is image ``rows[i]`` as uint8 ``(size, size, 3)``.

    The source is either the images' JPEG files (decoded on access, any size: only the paths
    are held, so memory does not grow with the pool) or an array already in memory. Either
    way an image is centre-cropped to a square and resized (bicubic) to ``size`` by the same
    function, so both sources give the same pixels. This is the paper's stored
    ``square256`` pool image (Doerig et al. §6, ``size=256``); the training transform
    (random square crop of 33–100 % of its area resized to the network's input size, flip,
    colour) or the evaluation transform (the whole square resized to the input size) is
    applied to each batch afterwards (:func:`~brainllm_utils.vision.augment`,
    :func:`~brainllm_utils.vision.preprocess`), from one seeded generator per epoch, so the
    random stream does not depend on the number of loader workers.

    Parameters
    ----------
    source : sequence of path-like or ndarray of uint8 of shape (n_source, height, width, 3)
        JPEG files, or images in memory (one size).
    size : int
        Side of the square images returned.
    rows : array-like of int, optional
        The source rows, in item order (``None``: all).
    load_size : int, optional
        Decode files at this square side first (as :func:`load_training_pool` with
        ``size=load_size`` would hold them in memory), then resize to ``size``; ``None``:
        straight to ``size``.
    """

    def __init__(self, source, size: int, rows=None, load_size: int | None = None):
        if isinstance(source, np.ndarray):
            if source.dtype != np.uint8 or source.ndim != 4 or source.shape[-1] != 3:
                raise ValueError(f"PoolImages: an array source must be uint8 (n, H, W, 3), got "
                                 f"{source.dtype} {source.shape}")
            self.paths, self.array = None, source
            n_source = source.shape[0]
        else:
            self.paths, self.array = [str(p) for p in source], None
            n_source = len(self.paths)
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"PoolImages: size must be a positive int, got {size!r}")
        self.size = int(size)
        self.load_size = None if load_size is None or int(load_size) == self.size else int(load_size)
        self.rows = np.arange(n_source) if rows is None else np.asarray(rows, dtype=np.int64).ravel()
        if self.rows.size and (self.rows.min() < 0 or self.rows.max() >= n_source):
            raise IndexError(f"PoolImages: rows must lie in 0..{n_source - 1}")

    @property
    def streaming(self) -> bool:
        """``True`` when images are decoded from their files on access."""
        return self.array is None

    def __len__(self) -> int:
        return int(self.rows.size)

    def __getitem__(self, i) -> np.ndarray:
        r = int(self.rows[i])
        if self.array is not None:
            return _square(self.array[r], self.size)
        if self.load_size is not None:
            return _square(_load_one(self.paths[r], self.load_size), self.size)
        return _load_one(self.paths[r], self.size)

    def batch(self, index) -> np.ndarray:
        """Items ``index`` as one uint8 array ``(len(index), size, size, 3)``.

        Parameters
        ----------
        index : array-like of int
            Item positions.

        Returns
        -------
        images : ndarray of uint8 of shape (n, size, size, 3)
            The images, in the order of ``index``.
        """
        index = np.asarray(index, dtype=np.int64).ravel()
        if self.array is not None and self.array.shape[1:3] == (self.size, self.size):
            return self.array[self.rows[index]]  # already square at this size: no per-image work
        out = np.empty((index.size, self.size, self.size, 3), np.uint8)
        for j, i in enumerate(index):
            out[j] = self[int(i)]
        return out


@dataclass
class TrainingPool:
    """Images never shown to subjects, with their annotations (:func:`load_training_pool`).

    The pixels are held in memory only when they fit a byte budget (``images``); otherwise
    :meth:`dataset` streams them from ``root``'s JPEG files.

    Attributes
    ----------
    images : ndarray of uint8 of shape (n_images, height, width, 3) or None
        RGB images in memory (``None``: not loaded; they stream from the files).
    coco_ids : ndarray of int64 of shape (n_images,)
        Their cocoIds.
    splits : ndarray of str of shape (n_images,)
        Their COCO split folders.
    captions : list of list of str
        Each image's captions.
    multihot : ndarray of float32 of shape (n_images, n_categories)
        COCO category labels.
    category_names : list of str
        Names of the ``multihot`` columns.
    key : str, default=""
        Cache key of the images (ids, size, files); ``""`` for pools built by hand.
    root : pathlib.Path, optional
        The data root of the JPEG files (``None``: pools built by hand, images in memory).
    size : int, optional
        The side the pool was loaded at (``None``: native sizes).
    """

    images: np.ndarray | None  # uint8 (n, H, W, 3), or None (streamed from the files)
    coco_ids: np.ndarray  # int64 (n,)
    splits: np.ndarray  # str (n,)
    captions: list  # list of list of str
    multihot: np.ndarray  # float32 (n, n_categories)
    category_names: list
    key: str = ""  # cache key of the images (ids, size, files); "" for pools built by hand
    root: Path | None = None
    size: int | None = None

    def __len__(self) -> int:
        return int(self.coco_ids.size)

    @property
    def paths(self) -> list[Path]:
        """The JPEG file of each image (``<root>/coco/<split>/<cocoId:012d>.jpg``)."""
        if self.root is None:
            raise ValueError("this pool was built by hand: it has no files (root=None)")
        return [Path(self.root) / COCO_DIR / str(s) / f"{int(c):012d}.jpg"
                for c, s in zip(self.coco_ids, self.splits)]

    def subset(self, index) -> "TrainingPool":
        """The pool restricted to some images.

        Parameters
        ----------
        index : array-like of int or of bool
            Rows to keep (positions, or a mask of length ``len(pool)``).

        Returns
        -------
        pool : TrainingPool
            The selected rows; its ``key`` derives from this pool's key and ``index``.
        """
        index = np.asarray(index)
        return TrainingPool(None if self.images is None else self.images[index], self.coco_ids[index],
                            self.splits[index], [self.captions[i] for i in np.arange(len(self))[index]],
                            self.multihot[index], self.category_names,
                            cache_key("vision_images", self.key, index) if self.key else "",
                            self.root, self.size)

    @fill_doc
    def dataset(self, rows, size: int, memory_budget: int | None = None, cache: bool = True,
                progress: bool = False) -> PoolImages:
        """Some pool images as :class:`PoolImages` at ``size`` (the training loader's input).

        Images already in memory are used as they are; otherwise, when ``len(rows)`` images
        of ``size`` × ``size`` × 3 bytes fit ``memory_budget``, they are decoded once into
        memory (:func:`load_coco_images`, cached); else they stream from their files. The
        pixels are the same in every case.

        Parameters
        ----------
        rows : array-like of int
            Pool rows, in item order.
        size : int
            Side of the square images (the paper: 256).
        memory_budget : int, optional
            Bytes allowed in memory (``None``: :data:`POOL_MEMORY_BUDGET`; 0: always stream).
        %(cache)s
        %(progress)s

        Returns
        -------
        images : PoolImages
            ``len(rows)`` images.
        """
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if self.images is not None:
            return PoolImages(self.images, size, rows)
        budget = _budget(memory_budget)
        side = self.size or size  # a pool loaded at a size gives the same pixels in memory or streamed
        if rows.size * side * side * 3 <= budget:
            imgs = load_coco_images(self.root, self.coco_ids[rows], self.splits[rows], size=side, cache=cache,
                                    progress=progress)
            return PoolImages(imgs, size)
        return PoolImages(self.paths, size, rows, load_size=self.size)


def _budget(memory_budget) -> int:
    if memory_budget is None:
        return POOL_MEMORY_BUDGET
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer)) or memory_budget < 0:
        raise ValueError(f"memory_budget must be a byte count ≥ 0 or None, got {memory_budget!r}")
    return int(memory_budget)


@fill_doc
def load_training_pool(root=None, n_images: int | None = None, size: int | None = None,
                       splits: Sequence[str] = ("train2017", "val2017"), seed: int = 0,
                       cache: bool = True, progress: bool = False, *, in_memory: bool | None = None,
                       memory_budget: int | None = None) -> TrainingPool:
    """The training pool: COCO images outside NSD with captions and multi-hot labels.

    On real COCO 2017 (123,287 train + val images, 73,000 of them NSD stimuli) the pool has
    50,287 images; the ``paper`` preset holds out 2,051 of them for validation and trains on
    the other 48,236, as the paper (Doerig et al. §6).

    Parameters
    ----------
    %(root_optional)s
    n_images : int, optional
        Keep a seeded random subset of this many images (``None``: all), sorted by cocoId.
    size : int, optional
        Resize to ``size`` × ``size`` after a centre square crop (``None``: native).
    splits : sequence of str, default=("train2017", "val2017")
        COCO splits to look in.
    seed : int, default=0
        Seed of the subset (:func:`numpy.random.default_rng`).
    %(cache)s
    %(progress)s
    in_memory : bool, optional
        Keyword-only. Decode the images into ``pool.images`` (``True``; native sizes must
        then agree), or leave them on disk to stream (``False``). ``None``: in memory when
        they share one size (given, or read from the files' headers) and fit
        ``memory_budget``.
    memory_budget : int, optional
        Keyword-only. Bytes the images may take in memory with ``in_memory=None``
        (``None``: :data:`POOL_MEMORY_BUDGET`).

    Returns
    -------
    pool : TrainingPool
        The images (:func:`load_coco_images`, or ``None`` to stream) with their captions
        and labels (:func:`load_coco_annotations`).
    """
    if size is not None and (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1):
        raise ValueError(f"size must be a positive int or None, got {size!r}")
    n_images = check_int(n_images, "n_images", min_value=1, allow_none=True)
    seed = check_int(seed, "seed", min_value=0)
    root = get_data_home(root)
    ids, sp = pool_coco_ids(root, splits)
    if n_images is not None and n_images < ids.size:
        keep = np.sort(np.random.default_rng(seed).choice(ids.size, n_images, replace=False))
        ids, sp = ids[keep], sp[keep]
    captions, multihot, names = load_coco_annotations(root, ids, sp)
    paths = [root / COCO_DIR / str(s) / f"{int(c):012d}.jpg" for c, s in zip(ids, sp)]
    if in_memory is None:
        hw = (size, size) if size is not None else _native_size(paths)
        in_memory = hw is not None and ids.size * hw[0] * hw[1] * 3 <= _budget(memory_budget)
    if in_memory:
        images, key = _load_images(root, ids, sp, size, cache, progress, want_key=True)
    else:
        images, key = None, images_key(ids, sp, size, paths)
    return TrainingPool(images, ids, sp, captions, multihot, names, key, root, size)


def make_targets(objective: str, captions=None, multihot=None, **embed_options) -> np.ndarray:
    """Training targets: the mean caption embedding (``"mpnet"``) or the multi-hot labels.

    Parameters
    ----------
    objective : {"mpnet", "multihot"}
        ``"mpnet"``: :func:`~brainllm_utils.features.embeddings.embed_captions` of
        ``captions``; ``"multihot"``: ``multihot`` as float32.
    captions : list of list of str, optional
        Each image's captions (needed for ``"mpnet"``).
    multihot : array-like of shape (n_images, n_categories), optional
        Category labels (needed for ``"multihot"``).
    **embed_options
        Passed to :func:`~brainllm_utils.features.embeddings.embed_captions` (e.g.
        ``device``, ``cache``).

    Returns
    -------
    targets : ndarray of float32 of shape (n_images, n_targets)
        768 columns for MPNet, one per category for multi-hot.
    """
    if objective == "mpnet":
        from ..features.embeddings import embed_captions

        if captions is None:
            raise ValueError("objective 'mpnet' needs captions")
        return embed_captions(captions, **embed_options)
    if objective == "multihot":
        if multihot is None:
            raise ValueError("objective 'multihot' needs multihot labels")
        return check_finite(multihot, "multihot", ndim=2, dtype=np.float32)
    raise ValueError(f"unknown objective {objective!r}; use 'mpnet' or 'multihot'")

