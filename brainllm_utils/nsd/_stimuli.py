"""Stimuli of an NSD copy: COCO captions, categories and the image brick."""

from __future__ import annotations

import functools
import json

import numpy as np

from .._utils.docs import fill_doc
from .layout import ANNOTATIONS, STIMULI, NSDFileError, _as_int_array

__all__: list[str] = []


class _StimuliMixin:
    """Methods of :class:`~brainllm_utils.nsd.NSD` that read the stimuli and their annotations.

    Needs ``self.root``, ``self.path``, ``self.stim_info`` and ``self.n_images``.
    """

    def _coco_json(self, kind: str, split: str) -> dict:
        key = f"{kind}_{split}"
        if key not in self._json_cache:
            p = self.path(f"{ANNOTATIONS}/{kind}_{split}.json", "COCO annotation file")
            try:
                data = json.loads(p.read_text())
            except Exception as err:
                raise NSDFileError(f"{p}: not valid COCO JSON ({err})") from err
            need = ("annotations", "categories") if kind == "instances" else ("annotations",)
            for field in need:
                if not isinstance(data, dict) or not isinstance(data.get(field), list):
                    raise NSDFileError(f"{p}: expected a list '{field}' at the top level (COCO {kind} "
                                       "annotations)")
            self._json_cache[key] = data
        return self._json_cache[key]

    def _annotation_fields(self, kind: str, split: str, fields: dict):
        """Yield, per entry of ``annotations``, its ``fields`` (name → type) checked; an
        NSDFileError names the file, the entry and the field otherwise."""
        p = self.root / ANNOTATIONS / f"{kind}_{split}.json"
        for i, ann in enumerate(self._coco_json(kind, split)["annotations"]):
            if not isinstance(ann, dict):
                raise NSDFileError(f"{p}: annotations[{i}] is {type(ann).__name__}, expected an object")
            out = []
            for field, typ in fields.items():
                v = ann.get(field)
                if not isinstance(v, typ) or isinstance(v, bool):
                    raise NSDFileError(
                        f"{p}: annotations[{i}] (id {ann.get('id')!r}) has {field}={v!r}, expected "
                        f"{'a string' if typ is str else 'an integer'}")
                out.append(v)
            yield out

    @functools.cache
    def _captions_index(self, split: str) -> dict[int, list[str]]:
        index: dict[int, list[tuple[int, str]]] = {}
        fields = {"image_id": int, "id": int, "caption": str}
        for image_id, ann_id, caption in self._annotation_fields("captions", split, fields):
            index.setdefault(image_id, []).append((ann_id, caption))
        return {k: [c.strip() for _, c in sorted(v)] for k, v in index.items()}

    def _coco_rows(self, nsd_ids) -> tuple[np.ndarray, np.ndarray, list[str]]:
        ids = _as_int_array(nsd_ids, "nsd_ids")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_images):
            raise ValueError(f"nsd_ids must be 0-based nsdIds in 0..{self.n_images - 1}")
        info = self.stim_info
        return ids, info["cocoId"].to_numpy()[ids], list(info["cocoSplit"].to_numpy()[ids])

    @fill_doc
    def captions(self, nsd_ids) -> list[list[str]]:
        """COCO captions of each image (usually 5, sometimes 6), in the order asked.

        Parameters
        ----------
        %(nsd_ids)s

        Returns
        -------
        captions : list of list of str
            For each image, its non-empty captions (whitespace-stripped) ordered by
            annotation id. Empty captions (``""`` or only whitespace) are dropped, with a
            :class:`~brainllm_utils.nsd.PartialDataWarning` naming the images (recorded in
            :meth:`data_report`): an empty caption has no meaning to embed.

        Raises
        ------
        NSDFileError
            When an image has no caption in the COCO captions file of its split, or only
            empty ones (refused like a missing caption: the image has nothing to embed).
        TypeError
            For ids that are not integers (floats, even integral ones, and bools are refused).
        """
        ids, coco, splits = self._coco_rows(nsd_ids)
        out, partly_empty = [], {}
        for i, c, split in zip(ids, coco, splits):
            caps = self._captions_index(split).get(int(c))
            f = self.root / ANNOTATIONS / f"captions_{split}.json"
            if not caps:
                raise NSDFileError(f"no captions for nsdId {i} (cocoId {c}) in {f}")
            kept = [t for t in caps if t]
            if not kept:
                raise NSDFileError(f"{f}: all {len(caps)} captions of nsdId {i} (cocoId {c}) are empty; "
                                   "the image has no caption to embed")
            if len(kept) < len(caps):
                partly_empty.setdefault(str(f), []).append(int(i))
            out.append(kept)
        for f, bad in partly_empty.items():
            uniq = sorted(set(bad))
            self._record("empty-captions",
                         f"{f}: {len(uniq)} images have empty captions, dropped (their other captions "
                         f"are used): nsdIds {uniq[:20]}{' …' if len(uniq) > 20 else ''}",
                         file=f, n_images=len(uniq), stacklevel=3)
        return out

    @functools.cached_property
    def category_names(self) -> list[str]:
        """COCO category names, ordered by category id (80 on real COCO)."""
        cats = self._category_table()
        return [cats[k] for k in sorted(cats)]

    def _category_table(self) -> dict[int, str]:
        p = self.root / ANNOTATIONS / "instances_train2017.json"
        cats = {}
        for i, c in enumerate(self._coco_json("instances", "train2017")["categories"]):
            if not (isinstance(c, dict) and isinstance(c.get("id"), int) and isinstance(c.get("name"), str)):
                raise NSDFileError(f"{p}: categories[{i}] = {c!r}, expected an object with an integer "
                                   "'id' and a string 'name'")
            if c["id"] in cats:
                raise NSDFileError(f"{p}: category id {c['id']} is listed twice")
            cats[c["id"]] = c["name"]
        if not cats:
            raise NSDFileError(f"{p}: no categories")
        return cats

    @functools.cache
    def _instances_index(self, split: str) -> dict[int, set[int]]:
        index: dict[int, set[int]] = {}
        known = self._category_table()
        p = self.root / ANNOTATIONS / f"instances_{split}.json"
        fields = {"image_id": int, "category_id": int}
        for i, (image_id, cat) in enumerate(self._annotation_fields("instances", split, fields)):
            if cat not in known:
                raise NSDFileError(f"{p}: annotations[{i}] has category_id={cat}, not among the "
                                   f"{len(known)} categories of instances_train2017.json")
            index.setdefault(image_id, set()).add(cat)
        return index

    @fill_doc
    def categories(self, nsd_ids) -> tuple[np.ndarray, list[str]]:
        """Multi-hot COCO categories: ``(float32 (n, n_categories), names)``.

        Parameters
        ----------
        %(nsd_ids)s

        Returns
        -------
        multihot : ndarray of float32 of shape (n_images, n_categories)
            1 where a category has at least one instance in the image, else 0.
        names : list of str
            The category names of the columns (:attr:`category_names`).
        """
        _, coco, splits = self._coco_rows(nsd_ids)
        cats = sorted(self._category_table())
        col = {cid: j for j, cid in enumerate(cats)}
        out = np.zeros((len(coco), len(cats)), dtype=np.float32)
        for row, (c, split) in enumerate(zip(coco, splits)):
            for cid in self._instances_index(split).get(int(c), ()):
                out[row, col[cid]] = 1.0
        return out, self.category_names

    @fill_doc
    def images(self, nsd_ids) -> np.ndarray:
        """Stimulus images, uint8 ``(n, H, W, 3)``, in the order asked.

        Parameters
        ----------
        %(nsd_ids)s

        Returns
        -------
        images : ndarray of uint8 of shape (n_images, height, width, 3)
            RGB images from ``imgBrick`` of ``nsd_stimuli.hdf5`` (425 × 425 on NSD).
        """
        import h5py

        ids = _as_int_array(nsd_ids, "nsd_ids")
        p = self.path(STIMULI, "stimulus file")
        try:
            with h5py.File(p, "r") as f:
                brick = f["imgBrick"]
                if brick.ndim != 4 or brick.shape[3] != 3 or brick.shape[0] != self.n_images:
                    raise NSDFileError(
                        f"{p}: imgBrick of shape {brick.shape}, expected ({self.n_images}, H, W, 3): one "
                        f"RGB image per row of {self.root / 'nsddata/experiments/nsd/nsd_stim_info_merged.csv'}")
                if ids.size and (ids.min() < 0 or ids.max() >= brick.shape[0]):
                    raise ValueError(f"nsd_ids must lie in 0..{brick.shape[0] - 1}")
                uniq, inverse = np.unique(ids, return_inverse=True)
                # row by row: a list index makes h5py build a point selection that reads ~90×
                # slower (0.71 s vs 0.008 s for 128 of the sandbox's gzip-chunked rows)
                data = np.empty((uniq.size, *brick.shape[1:]), np.uint8)
                for k, i in enumerate(uniq.tolist()):
                    data[k] = brick[i]
        except NSDFileError:
            raise
        except (OSError, KeyError) as err:
            raise NSDFileError(f"{p}: cannot read dataset 'imgBrick' ({err})") from err
        return np.asarray(data, dtype=np.uint8)[inverse]
