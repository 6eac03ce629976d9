"""Any local Hugging Face text model as a feature space, by name: ``hf:<model>[?options]``.

A name is one plain string (the batch runner passes parameters as strings)::

    hf:<model>
    hf:<model>?layer=3&pooling=last
    hf:<model>?pooling=mean&prompt=A photo of {caption}.&normalize=true

``<model>`` is anything :func:`~brainllm_utils.features.weights.resolve_model` resolves (an
alias such as ``minilm``, a Hub id in the Hugging Face cache, a local folder); it runs up
to the first ``?`` (so it cannot contain one). Options follow as ``key=value`` pairs joined
by ``&``, each at most once; values are percent-decoded (write ``%26`` for a literal ``&``
and ``%25`` for ``%``). The options, checked strictly (an unknown key, a repeated key, an
empty or malformed value is a ``ValueError`` naming it):

==============  ===============================================================================
``layer``       an int, index into ``hidden_states`` (0 = embeddings; negatives from the end);
                default the model's ``last_hidden_state``
``pooling``     ``mean``, ``cls``, ``last`` or ``max`` (default: the model's sentence-
                transformers pooling; else ``last`` for a decoder, ``mean`` for an encoder)
``prompt``      a template containing ``{caption}`` exactly once
``normalize``   ``true`` or ``false`` (L2-normalise each caption's vector before averaging)
``max_length``  a positive int, tokens kept per caption
``sweep``       ``all`` or comma-separated ints: the layers this name is one of (set by
                :func:`layer_sweep`); the first name of a sweep built runs the model once for
                every layer of it and caches each, so the others are cache hits
==============  ===============================================================================

The image's vector is the mean of its captions' vectors (:func:`embed_captions`).
"""

from __future__ import annotations

import re
from typing import Any, Sequence
from urllib.parse import unquote

import numpy as np

from .embeddings import (
    POOLING_MODES,
    _check_layer,
    _check_options,
    _sweep_layers,
    embed_captions,
    get_model_spec,
)

__all__ = ["HF_PREFIX", "HF_OPTIONS", "parse_text_model_name", "text_model_name", "layer_sweep",
           "check_text_model_name"]

#: The prefix of the Hugging Face feature-space family.
HF_PREFIX = "hf:"
#: The options an ``hf:`` name may carry, in their canonical order.
HF_OPTIONS = ("layer", "pooling", "prompt", "normalize", "max_length", "sweep")

_INT = re.compile(r"-?[0-9]+")
_LAYERS = re.compile(r"-?[0-9]+(,-?[0-9]+)*")
_PASS_THROUGH = ("device", "batch_size", "cache", "precision", "progress")


def _quote(value: str) -> str:
    """Escape what would end or garble a value (``%`` first, then ``&``)."""
    return value.replace("%", "%25").replace("&", "%26")


def parse_text_model_name(name: str) -> tuple[str, dict[str, Any]]:
    """Split an ``hf:`` feature-space name into its model and checked options.

    Parameters
    ----------
    name : str
        ``"hf:<model>"`` or ``"hf:<model>?key=value&..."`` (see the module's syntax).

    Returns
    -------
    model : str
        The model part, as written.
    options : dict
        Present options only: ``layer`` (int), ``pooling`` (str), ``prompt`` (str),
        ``normalize`` (bool), ``max_length`` (int), ``sweep`` (``"all"`` or tuple of int).

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If it does not start with ``hf:``, has no model, or an option is unknown,
        repeated, empty or malformed (the message names it).

    Examples
    --------
    >>> parse_text_model_name("hf:minilm?layer=-2&pooling=cls")
    ('minilm', {'layer': -2, 'pooling': 'cls'})
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a feature-space name (str), got {type(name).__name__}: "
                        f"{name!r:.60}")
    if not name.startswith(HF_PREFIX):
        raise ValueError(f"{name!r:.80} is not an {HF_PREFIX}<model> feature-space name")
    model, sep, query = name[len(HF_PREFIX):].partition("?")
    if not model.strip():
        raise ValueError(f"{name!r:.80}: no model after {HF_PREFIX!r} "
                         "(hf:<model>[?option=value&...])")
    options: dict[str, Any] = {}
    if not sep:
        return model, options
    if not query:
        raise ValueError(f"{name!r:.80}: nothing after '?' (expected option=value pairs joined "
                         "by '&')")
    for part in query.split("&"):
        key, eq, raw = part.partition("=")
        if not eq:
            raise ValueError(f"{name!r:.80}: option {part!r:.40} has no '=' (expected key=value)")
        if key not in HF_OPTIONS:
            raise ValueError(f"{name!r:.80}: unknown option {key!r}; known options: "
                             f"{list(HF_OPTIONS)}")
        if key in options:
            raise ValueError(f"{name!r:.80}: option {key!r} is given twice")
        value = unquote(raw, errors="strict")
        if not value:
            raise ValueError(f"{name!r:.80}: option {key!r} has an empty value")
        options[key] = _parse_value(name, key, value)
    _check_options(options.get("pooling"), options.get("prompt"), options.get("normalize"),
                   options.get("max_length"))
    if "sweep" in options and "layer" not in options:
        raise ValueError(f"{name!r:.80}: option 'sweep' needs 'layer' (the layer this name reads)")
    return model, options


def _parse_value(name: str, key: str, value: str) -> Any:
    """One option's value from its text (the name is only for messages)."""
    if key == "layer":
        if value == "all":
            raise ValueError(f"{name!r:.80}: layer=all is several feature spaces; "
                             "features.layer_sweep(name) gives one name per layer")
        if not _INT.fullmatch(value):
            raise ValueError(f"{name!r:.80}: layer must be an int, got {value!r}")
        return int(value)
    if key == "pooling":
        if value not in POOLING_MODES:
            raise ValueError(f"{name!r:.80}: pooling must be one of {POOLING_MODES}, got {value!r}")
        return value
    if key == "normalize":
        if value not in ("true", "false"):
            raise ValueError(f"{name!r:.80}: normalize must be 'true' or 'false', got {value!r}")
        return value == "true"
    if key == "max_length":
        if not _INT.fullmatch(value) or int(value) < 1:
            raise ValueError(f"{name!r:.80}: max_length must be a positive int, got {value!r}")
        return int(value)
    if key == "sweep":
        if value == "all":
            return "all"
        if not _LAYERS.fullmatch(value):
            raise ValueError(f"{name!r:.80}: sweep must be 'all' or comma-separated ints, got "
                             f"{value!r}")
        return tuple(int(v) for v in value.split(","))
    return value  # prompt: checked with the others


def text_model_name(
    model: str,
    *,
    layer: int | None = None,
    pooling: str | None = None,
    prompt: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
    sweep: str | Sequence[int] | None = None,
) -> str:
    """The canonical ``hf:`` feature-space name of a model and options.

    Parameters
    ----------
    model : str
        A name :func:`~brainllm_utils.features.weights.resolve_model` resolves, or a local
        folder (without ``?``).
    layer, pooling, prompt, normalize, max_length : optional
        As in :func:`~brainllm_utils.features.embed_sentences` (``layer`` one int).
    sweep : "all" or sequence of int, optional
        The layers of the sweep this name belongs to (:func:`layer_sweep`).

    Returns
    -------
    name : str
        ``hf:<model>?...`` with the given options in the order of :data:`HF_OPTIONS`;
        :func:`parse_text_model_name` reads it back.

    Raises
    ------
    TypeError, ValueError
        If the model or an option is invalid (the message names it).

    Examples
    --------
    >>> text_model_name("minilm", layer=3, prompt="A photo of {caption}")
    'hf:minilm?layer=3&prompt=A photo of {caption}'
    """
    if not isinstance(model, str) or not model.strip() or "?" in model:
        raise ValueError(f"model must be a non-empty str without '?', got {model!r:.80}")
    _check_options(pooling, prompt, normalize, max_length)
    parts = []
    if layer is not None:
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int or None, got {type(layer).__name__}: "
                            f"{layer!r:.60}")
        parts.append(f"layer={int(layer)}")
    if pooling is not None:
        parts.append(f"pooling={pooling}")
    if prompt is not None:
        parts.append(f"prompt={_quote(prompt)}")
    if normalize is not None:
        parts.append(f"normalize={'true' if normalize else 'false'}")
    if max_length is not None:
        parts.append(f"max_length={int(max_length)}")
    if sweep is not None:
        if layer is None:
            raise ValueError("sweep needs layer (the layer this name reads)")
        if isinstance(sweep, str):
            if sweep != "all":
                raise ValueError(f"sweep must be 'all' or a sequence of ints, got {sweep!r}")
            parts.append("sweep=all")
        else:
            values = list(sweep)
            if not values or any(isinstance(v, (bool, np.bool_))
                                 or not isinstance(v, (int, np.integer)) for v in values):
                raise ValueError(f"sweep must be 'all' or a non-empty sequence of ints, got "
                                 f"{sweep!r:.80}")
            parts.append("sweep=" + ",".join(str(int(v)) for v in values))
    name = HF_PREFIX + model + ("?" + "&".join(parts) if parts else "")
    return name


def layer_sweep(name: str, layers: str | Sequence[int] = "all") -> list[str]:
    """One ``hf:`` feature-space name per layer of a model, built together.

    ``features.build_many(layer_sweep(name), nsd, ids)`` runs the model once (one forward
    pass per batch for every layer): the first name computes the whole sweep and caches
    each layer; the others are cache hits (with ``cache=False`` each name would run it
    again).

    Parameters
    ----------
    name : str
        An ``hf:<model>[?options]`` name without ``layer`` or ``sweep``.
    layers : "all" or sequence of int, default="all"
        Every hidden state (0 = embeddings to ``n_layers``), or these indices (negatives
        count from the end; made non-negative in the names).

    Returns
    -------
    names : list of str
        One name per layer, in order, each with ``layer=<i>&sweep=<layers>``.

    Raises
    ------
    ValueError
        If ``name`` is not an ``hf:`` name, already selects a layer, or a layer is out of
        range for the model (read from its config; no weights are loaded).
    brainllm_utils.weights.ModelNotFoundError
        If the model is not available locally.

    Examples
    --------
    >>> names = layer_sweep("hf:/models/my-llm?pooling=last")  # doctest: +SKIP
    >>> names[:2]  # doctest: +SKIP
    ['hf:/models/my-llm?layer=0&pooling=last&sweep=all',
     'hf:/models/my-llm?layer=1&pooling=last&sweep=all']
    >>> X = features.build_many(names, nsd, ids)  # one model run, every layer  # doctest: +SKIP
    """
    model, opts = parse_text_model_name(name)
    for key in ("layer", "sweep"):
        if key in opts:
            raise ValueError(f"{name!r:.80} already has option {key!r}; layer_sweep adds one "
                             "layer per name")
    if isinstance(layers, str) and layers != "all":
        raise ValueError(f"layers must be 'all' or a sequence of ints, got {layers!r}")
    spec = get_model_spec(model, **opts)
    chosen = _sweep_layers(layers, spec)
    sweep = "all" if isinstance(layers, str) else chosen
    return [text_model_name(model, layer=v, sweep=sweep, **opts) for v in chosen]


def check_text_model_name(name: str) -> str:
    """Check an ``hf:`` name completely without loading weights (for a batch's parameter check).

    Parses the name, resolves the model offline and reads its config: the layer, sweep and
    ``max_length`` are checked against the model, so a worker never meets a bad name.

    Parameters
    ----------
    name : str
        An ``hf:<model>[?options]`` feature-space name.

    Returns
    -------
    name : str
        ``name``, unchanged.

    Raises
    ------
    ValueError
        If the name is malformed or an option does not fit the model (the message names it).
    brainllm_utils.weights.ModelNotFoundError
        If the model is not available locally.
    NotImplementedError
        If the model is of a kind that cannot be embedded (an encoder-decoder).
    """
    _resolve(name)
    return name


def _resolve(name: str):
    """``(model, options without layer/sweep, layers to compute, index of this name's layer)``;
    ``layers`` is None for a single layer (``options`` then keeps ``layer``)."""
    model, opts = parse_text_model_name(name)
    sweep = opts.pop("sweep", None)
    if sweep is None:
        get_model_spec(model, **opts)  # checks the layer and max_length against the model
        return model, opts, None, None
    layer = opts.pop("layer")
    spec = get_model_spec(model, **opts)
    chosen = _sweep_layers(sweep, spec)
    want = _check_layer(layer, spec.n_layers, spec.name)
    if want not in chosen:
        raise ValueError(f"{name!r:.80}: layer {layer} is not one of its sweep's layers "
                         f"{list(chosen)}")
    return model, opts, chosen, chosen.index(want)


def hf_space(nsd, ids, hf_spec: str, **options) -> np.ndarray:
    """Builder of the ``hf:<model>[?options]`` family (``register_pattern``'s factory).

    Parameters
    ----------
    nsd : NSD-like
        Has ``captions(ids)``: a list of caption lists.
    ids : ndarray of int
        The images' nsdIds.
    hf_spec : str
        The name after ``hf:``.
    **options
        ``device``, ``batch_size``, ``cache``, ``precision``, ``progress`` go to
        :func:`~brainllm_utils.features.embed_captions`; others are ignored, as by the
        other spaces.

    Returns
    -------
    X : ndarray of float32 of shape (n_images, n_dims)
        Mean over each image's captions of the pooled hidden states.
    """
    model, opts, chosen, index = _resolve(HF_PREFIX + hf_spec)
    kwargs = {k: options[k] for k in _PASS_THROUGH if k in options}
    captions = nsd.captions(ids)
    if chosen is None:
        return embed_captions(captions, model=model, **opts, **kwargs)
    return embed_captions(captions, model=model, layer=list(chosen), **opts, **kwargs)[index]
