"""brainllm_utils: the tested package behind the brainllm book.

Reproduces and extends Doerig et al., *Visual representations in the human brain are
aligned with large language models* (Nature Machine Intelligence 2025).

The package is layered; a layer imports only from the layers below it
(``tests/test_architecture.py`` checks this):

====  ==============================  =====================================================
  0   ``_utils``                      paths, atomic files, the one cache, devices and torch
  1   ``nsd``, ``synth``              the NSD reader and layout; the ground-truth sandbox
  2   ``features``                    feature-space registry, sentence embeddings, weights
  3   ``rsa``, ``encoding``,          RDMs, searchlight, ceilings; ridge estimators,
      ``vision``, ``stats``           decoding, caption metrics; BLT networks; group tests
  4   ``chapters``                    one module per book chapter, findings, paper numbers
  5   ``viz``                         figures (a leaf: takes data, returns Axes)
  6   ``book``                        papermill, the Dask batch, the browser check
====  ==============================  =====================================================

Top-level modules such as ``brainllm_utils.embeddings`` or ``brainllm_utils.rsa_analysis`` are
public faces that re-export names from the subpackages above; they hold imports only.
Subpackages are imported lazily (``from brainllm_utils import nsd``); importing the package
itself never imports torch.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
