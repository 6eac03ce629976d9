"""Stimuli of an NSD copy: COCO captions, categories and the image brick."""

from __future__ import annotations

import functools
import json

import numpy as np

from .._utils.docs import fill_doc
from .layout import ANNOTATIONS, STIMULI, NSDFileError

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
                self._json_cache[key] = json.loads(p.read_text())
            except Exception as err:
                raise NSDFileError(f"{p}: not valid COCO JSON ({err})") from err
        return self._json_cache[key]

    @functools.cache
    def _captions_index(self, split: str) -> dict[int, list[str]]:
        index: dict[int, list[tuple[int, str]]] = {}
        for ann in self._coco_json("captions", split)["annotations"]:
            index.setdefault(int(ann["image_id"]), []).append((int(ann["id"]), ann["caption"]))
        return {k: [c.strip() for _, c in sorted(v)] for k, v in index.items()}

    def _coco_rows(self, nsd_ids) -> tuple[np.ndarray, np.ndarray, list[str]]:
        ids = np.asarray(nsd_ids, dtype=np.int64).ravel()
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
            For each image, its captions (whitespace-stripped) ordered by annotation id.

        Raises
        ------
        NSDFileError
            When an image has no caption in the COCO captions file of its split.
        """
        ids, coco, splits = self._coco_rows(nsd_ids)
        out = []
        for i, c, split in zip(ids, coco, splits):
            caps = self._captions_index(split).get(int(c))
            if not caps:
                raise NSDFileError(
                    f"no captions for nsdId {i} (cocoId {c}) in "
                    f"{self.root / ANNOTATIONS / f'captions_{split}.json'}"
                )
            out.append(caps)
        return out

    @functools.cached_property
    def category_names(self) -> list[str]:
        """COCO category names, ordered by category id (80 on real COCO)."""
        cats = {c["id"]: c["name"] for c in self._coco_json("instances", "train2017")["categories"]}
        return [cats[k] for k in sorted(cats)]

    @functools.cache
    def _instances_index(self, split: str) -> dict[int, set[int]]:
        index: dict[int, set[int]] = {}
        for ann in self._coco_json("instances", split)["annotations"]:
            index.setdefault(int(ann["image_id"]), set()).add(int(ann["category_id"]))
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
        cats = sorted(c["id"] for c in self._coco_json("instances", "train2017")["categories"])
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

        ids = np.asarray(nsd_ids, dtype=np.int64).ravel()
        p = self.path(STIMULI, "stimulus file")
        try:
            with h5py.File(p, "r") as f:
                brick = f["imgBrick"]
                if ids.size and (ids.min() < 0 or ids.max() >= brick.shape[0]):
                    raise ValueError(f"nsd_ids must lie in 0..{brick.shape[0] - 1}")
                uniq, inverse = np.unique(ids, return_inverse=True)  # h5py needs increasing
                data = brick[uniq] if uniq.size else np.zeros((0, *brick.shape[1:]), np.uint8)
        except (OSError, KeyError) as err:
            raise NSDFileError(f"{p}: cannot read dataset 'imgBrick' ({err})") from err
        return np.asarray(data, dtype=np.uint8)[inverse]
