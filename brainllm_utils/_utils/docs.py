"""Shared docstring fragments: a parameter that recurs is documented once, here.

:data:`docdict` maps a key to a complete numpydoc parameter entry (the ``name : type`` line
and its indented description); :func:`fill_doc` replaces every ``%(key)s`` in a docstring by
that entry, indented like the placeholder. The idea is nilearn's ``fill_doc``; this version
substitutes with a regular expression, so a literal ``%`` in a docstring needs no escaping::

    from brainllm_utils._utils.docs import fill_doc

    @fill_doc
    def searchlight(data, device="auto", progress=True):
        '''One-line summary.

        Parameters
        ----------
        data : ndarray of shape (n_images, n_voxels)
            Brain patterns.
        %(device)s
        %(progress_true)s
        '''

Keys are usually the parameter's name; where one name has several defaults or meanings the
key says which (``ax`` and ``ax_new``, ``progress`` and ``progress_true``). Add an entry when
a parameter is documented three or more times with the same meaning. This module is the
lowest layer: it imports nothing from the package.
"""

from __future__ import annotations

import re

__all__ = ["docdict", "fill_doc"]

#: Parameter entries by key: first line ``name : type``, description lines indented by 4.
docdict: dict[str, str] = {}

# ----------------------------------------------------------------------------- data and subjects
docdict["nsd"] = """nsd : NSD
    An open NSD copy or sandbox (:class:`brainllm_utils.nsd.NSD`)."""

docdict["subjects"] = """subjects : list of str or int, optional
    Subjects to analyse, as ``"subj01"`` or ``1``; ``None``: every subject with data."""

docdict["sessions"] = """sessions : None, int, str, sequence of int or dict, optional
    The 1-based sessions whose betas are used: ``None`` (default) every acquired session
    whose beta files are on disk (:meth:`~brainllm_utils.nsd.NSD.sessions`; a
    :class:`~brainllm_utils.nsd.SessionsMissingWarning` names those missing), a list such
    as ``[1, 2, 5]``, a string such as ``"1-5"`` or ``"1-3,7"``
    (:func:`~brainllm_utils.nsd.parse_session_spec`), or a dict ``{subject: sessions}`` with one
    entry per subject. Sessions need not be consecutive. An explicit session whose beta
    file is missing raises :class:`~brainllm_utils.nsd.NSDFileError` naming the file."""

docdict["subject"] = """subject : str
    A subject, ``"subj01"`` … ``"subj08"``."""

docdict["subject_any"] = """subject : str or int
    A subject, as ``"subj01"``, ``"01"`` or ``1``
    (:func:`~brainllm_utils.nsd.subject_name`)."""

docdict["space"] = """space : {"fsaverage", "func1pt8mm"}, default="fsaverage"
    Where the betas live: fsaverage surface vertices (lh then rh) or the subject's 1.8-mm
    functional volume."""

docdict["atlas"] = """atlas : str
    An NSD atlas, e.g. ``"streams"`` or ``"floc-faces"``: ``label/{lh,rh}.<atlas>.mgz`` of
    fsaverage, ``func1pt8mm/roi/<atlas>.nii.gz`` of a subject, labels named by
    ``<atlas>.mgz.ctab``."""

docdict["atlas_streams"] = """atlas : str, default="streams"
    The NSD atlas whose labels are the ROIs (:meth:`~brainllm_utils.nsd.NSD.roi_labels`)."""

docdict["roi"] = """roi : (str, str or int) or ndarray of bool, optional
    Columns kept: ``(atlas, label)`` such as ``("streams", "ventral")``
    (:meth:`~brainllm_utils.nsd.NSD.roi_mask`), or a boolean mask of the full surface
    ``(n_vertices_lh + n_vertices_rh,)`` or volume ``(X, Y, Z)``; ``None``: every fsaverage
    vertex, or the func1pt8mm brain mask."""

docdict["nsd_ids"] = """nsd_ids : array-like of int of shape (n_images,)
    0-based nsdIds (rows of ``nsd_stim_info_merged.csv``); the output follows their order."""

docdict["min_repeats"] = """min_repeats : int, default=3
    Keep the images the subject saw at least this many times (3: the paper's images)."""

docdict["root"] = """root : str or path-like
    An NSD root: the folder holding ``nsddata/``, ``nsddata_betas/`` and
    ``nsddata_stimuli/`` (a real NSD copy or a sandbox from
    :func:`~brainllm_utils.synth.make_synthetic_nsd`)."""

docdict["data_home"] = """data_home : str or path-like, optional
    The NSD root (a real NSD copy or the sandbox); ``None``: ``$BRAINLLM_DATA``, then
    ``<repo>/data/sandbox`` (:func:`~brainllm_utils._utils.paths.get_data_home`)."""

docdict["root_optional"] = """root : str or path-like, optional
    The NSD root (a real NSD copy or the sandbox); ``None``: ``$BRAINLLM_DATA``, then
    ``<repo>/data/sandbox`` (:func:`~brainllm_utils._utils.paths.get_data_home`)."""

docdict["results_dir"] = """results_dir : str or path-like, optional
    Folder for analysis outputs; ``None``: ``$BRAINLLM_RESULTS``, then
    ``<repo>/data/results`` (:func:`~brainllm_utils._utils.paths.get_results_dir`)."""

docdict["cache"] = """cache : bool or path-like, default=True
    ``True``: reuse and write entries in the package's one disk cache, under
    :func:`~brainllm_utils._utils.paths.get_cache_dir`; a folder: cache under it instead
    (:func:`~brainllm_utils._utils.cache.resolve_cache`); ``False`` or ``None``: compute
    without the disk cache."""

# ----------------------------------------------------------------------------- computation
docdict["device"] = """device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
    Where torch computes. ``"auto"`` (or ``None``) picks CUDA when torch sees a GPU, else
    the CPU; asking for CUDA without a GPU raises a ``RuntimeError``
    (:func:`~brainllm_utils._utils.device.resolve_device`)."""

docdict["device_cpu"] = """device : {"cpu", "auto", "cuda", "cuda:N"} or torch.device, default="cpu"
    The torch device to compute on (validated by
    :func:`~brainllm_utils._utils.device.resolve_device`; ``"auto"`` picks CUDA when present)."""

docdict["seed"] = """seed : int, default=0
    Seed of :func:`numpy.random.default_rng`: the same seed gives the same result."""

docdict["random_state"] = """random_state : int, default=0
    Seed of :func:`numpy.random.default_rng`: the same seed gives the same result."""

docdict["rng"] = """rng : numpy.random.Generator
    The source of all randomness: the result is deterministic given its state."""

docdict["progress"] = """progress : bool, default=False
    Show a progress bar."""

docdict["progress_true"] = """progress : bool, default=True
    Show a progress bar (tqdm)."""

docdict["argv"] = """argv : list of str, optional
    Command-line arguments; ``None``: ``sys.argv[1:]``."""

docdict["prog"] = """prog : str, optional
    Program name shown in usage and help (``brainllm <subcommand>`` from the console
    command); ``None``: the ``python -m`` form."""

# ----------------------------------------------------------------------------- RSA
docdict["method"] = """method : {"pearson", "spearman", "kendall_tau_a", "cosine"}, default="pearson"
    How two RDMs are compared (:func:`~brainllm_utils.rsa.compare_rdms`); rsatoolbox's
    names ``"corr"``, ``"rho"``, ``"tau-a"`` are accepted too."""

docdict["brain_metric"] = """brain_metric : {"correlation", "cosine", "euclidean"}, default="correlation"
    Dissimilarity of the brain RDMs (as :func:`~brainllm_utils.rsa.compute_rdm`)."""

docdict["model_metric"] = """model_metric : {"correlation", "cosine", "euclidean"}, default="correlation"
    Dissimilarity of the model RDMs computed from feature matrices (ignored for models
    given as RDMs)."""

docdict["sets"] = """sets : array-like of int of shape (n_sets, set_size), optional
    Sample sets, row positions of the images (:func:`~brainllm_utils.rsa.make_sample_sets`,
    :func:`~brainllm_utils.rsa.get_sample_sets`): the analysis runs within each set and
    is averaged over sets (the paper's 100-image sampling). ``None``: one set of all
    images."""

docdict["set_size"] = """set_size : int, default=100
    Images per sample set (the paper's 100; at most the subject's number of images)."""

docdict["n_sets"] = """n_sets : int, optional
    Use only each subject's first ``n_sets`` sample sets (fewer images to embed);
    ``None``: all of them, as the paper."""

docdict["sets_seed"] = """seed : int, default=0
    Seed of the subjects' partitions into sample sets
    (:func:`~brainllm_utils.rsa.get_sample_sets`; saved once per seed and reused)."""

docdict["rois"] = """rois : list of str, optional
    ROIs, labels of ``atlas`` (e.g. ``["ventral", "lateral"]``); ``None``: every label."""

docdict["feature_options"] = """**feature_options : dict
    Passed to the feature builders (:func:`~brainllm_utils.features.build`), e.g.
    ``batch_size`` or ``vectors_path``."""

docdict["test_ids"] = """test_ids : array-like of int, optional
    nsdIds of the test images; ``None``: the images every subject saw 3 times
    (:meth:`~brainllm_utils.nsd.NSD.shared_test_images`, the paper's 515)."""

docdict["reorder"] = """reorder : bool, default=False
    When two rsatoolbox inputs (``RDMs`` / ``Dataset``) both carry the ``nsdId`` pattern
    descriptor and hold the same images in another order, reorder the second to the
    first's order instead of raising (:func:`~brainllm_utils.rsa.from_rdms`). Different
    images always raise; plain arrays are used by position."""

# ----------------------------------------------------------------------------- statistics
docdict["q"] = """q : float, default=0.05
    False discovery rate of the Benjamini–Hochberg procedure."""

docdict["alternative"] = """alternative : {"two-sided", "greater", "less"}, default="two-sided"
    Alternative hypothesis (as in :func:`scipy.stats.ttest_1samp`)."""

# ----------------------------------------------------------------------------- encoding
docdict["estimator"] = """estimator : object, optional
    Any regressor with ``fit(X, Y)`` and ``predict(X)`` (e.g. scikit-learn's); ``None``:
    :class:`~brainllm_utils.encoding.RidgeCV` with its defaults (one penalty per target)."""

docdict["alphas"] = """alphas : array-like of float > 0, optional
    Candidate penalties; ``None``: ``np.logspace(-2, 6, 17)``."""

docdict["cv"] = """cv : int, splitter or iterable of (train, val), default=5
    An int means contiguous unshuffled K-fold (as scikit-learn ``KFold`` and himalaya).
    Splitters get ``groups`` from ``fit`` (e.g. ``GroupKFold``)."""

docdict["fit_intercept"] = """fit_intercept : bool, default=True
    Centre X and Y with each fold's training means (as scikit-learn / himalaya)."""

docdict["scoring"] = """scoring : {"r2", "pearson", "neg_mse"}, default="r2"
    Validation score. ``"r2"`` is the mean over folds of each fold's R² (himalaya's
    ``r2_score``); himalaya's solver default is ``"neg_mse"``."""

docdict["solver"] = """solver : {"auto", "primal", "kernel"}, default="auto"
    ``"auto"`` uses the kernel form ``XXᵀ`` when ``n_features > n_samples``."""

docdict["ridge_dtype"] = """dtype : {"float32", "float64"}, default="float32"
    Data precision; decompositions are always float64."""

docdict["allow_tf32"] = """allow_tf32 : bool, default=False
    Allow TF32 matmuls on CUDA (faster, ~0.04 % of targets change alpha)."""

docdict["memory_budget"] = """memory_budget : int, optional
    Bytes per chunk of targets (default: half the free GPU memory; a quarter of free RAM,
    at most 4 GiB, on the CPU)."""

docdict["chunk_size"] = """chunk_size : int, optional
    Force the number of targets per chunk."""

docdict["groups"] = """groups : array-like of shape (n_samples,), optional
    Group labels passed to the splitter's ``split`` (e.g. ``GroupKFold``); ignored for an
    int ``cv``."""

docdict["feature"] = """feature : str, default="mpnet"
    A registered feature space (:func:`~brainllm_utils.features.build`)."""

docdict["alphas_encoding"] = """alphas : array-like of float > 0, default=DEFAULT_ALPHAS
    Candidate ridge penalties (13 log-spaced values, 0.1 … 1e5), one chosen per target
    by cross-validation on the training images."""

docdict["space_fsaverage"] = """space : {"fsaverage"}, default="fsaverage"
    The encoding maps are computed on the fsaverage surface (the only space accepted)."""

docdict["roi_encoding"] = """roi : str, (str, str or int) or ndarray of bool, optional
    Vertices to keep: an atlas name (``"streams"``, ``"nsdgeneral"``: all its labels > 0),
    ``(atlas, label)`` or a boolean mask of the full space (as
    :meth:`~brainllm_utils.nsd.NSD.betas`); ``None``: every vertex."""

docdict["X_features"] = """X : array-like of shape (n_samples, n_features)
    Features (e.g. caption embeddings), one row per image."""

docdict["Xs"] = """Xs : list of array-like of shape (n_samples, n_features_b)
    The feature bands (one 2-D array is one band); all bands have the same rows."""

docdict["Y_targets"] = """Y : array-like of shape (n_samples, n_targets) or (n_samples,)
    Targets (e.g. vertices or voxels), one row per image."""

# ----------------------------------------------------------------------------- decoding
docdict["pred_true"] = """pred, true : array-like of shape (n_items, n_dims)
    Predicted and true embeddings; row i of both belongs to item i."""

docdict["decoding_metric"] = """metric : {"correlation", "cosine"}, default="correlation"
    Similarity between a prediction and an embedding: Pearson r of the two rows (rows
    centred first) or cosine similarity."""

docdict["candidates"] = """candidates : sequence of str or of list of str
    One candidate caption per image (a string, or a list of tokens)."""

docdict["references"] = """references : sequence of sequence of str or of list of str
    For each image, its reference captions (strings, or lists of tokens)."""

docdict["candidate"] = """candidate : str or list of str
    One candidate caption (a string, or a list of tokens)."""

docdict["references_one"] = """references : sequence of str or of list of str
    The candidate's reference captions (strings, or lists of tokens)."""

docdict["max_n"] = """max_n : int, default=4
    Longest n-gram counted (4: BLEU-4 / CIDEr-D as in coco-caption)."""

# ----------------------------------------------------------------------------- sandbox
docdict["graph"] = """graph : dict
    A scene graph (the JSON-able dict described in :mod:`brainllm_utils.synth._scenes`)."""

# ----------------------------------------------------------------------------- vision
docdict["blt_config"] = """config : BLTConfig
    The network's architecture (:class:`~brainllm_utils.vision.BLTConfig`)."""

docdict["preset"] = """preset : {"tiny", "sandbox", "sandbox_gpu", "paper"}, default="sandbox"
    Architecture and optimisation settings: a key of
    :data:`~brainllm_utils.vision.PRESETS`."""

docdict["image_ids"] = """image_ids : array-like of int of shape (n_images,), optional
    Ids of the images (e.g. nsdIds) that key the cache; ``None``: the pixels are hashed."""

docdict["transfer_epochs"] = """epochs : int, default=200
    Passes over the training rows."""

docdict["transfer_lr"] = """lr : float, default=0.05
    Peak learning rate of Adam (cosine-annealed over all batches)."""

docdict["transfer_batch_size"] = """batch_size : int, default=96
    Training rows per batch."""

# ----------------------------------------------------------------------------- figures
docdict["ax"] = """ax : matplotlib.axes.Axes, optional
    Axes to draw into; ``None``: the current Axes (``plt.gca()``)."""

docdict["ax_new"] = """ax : matplotlib.axes.Axes, optional
    Axes to draw into; ``None``: the Axes of a new figure."""

docdict["title"] = """title : str, optional
    Title of the Axes (none when ``None`` or empty)."""

docdict["colorbar"] = """colorbar : bool, default=True
    Draw a colour bar."""

docdict["plot_threshold"] = """threshold : float, optional
    Values with ``|v| < threshold`` are not drawn."""

docdict["palette"] = """palette : str, default="tab10"
    Name of the matplotlib colormap that colours the groups."""

docdict["images"] = """images : array-like of uint8 of shape (n_images, height, width, 3)
    RGB images."""

docdict["n_cols"] = """n_cols : int, default=4
    Images per row of the montage."""

docdict["returns_ax"] = """ax : matplotlib.axes.Axes
    The Axes drawn into."""

# ----------------------------------------------------------------------------- book runner
docdict["smoke"] = """smoke : bool, default=False
    Apply the ``smoke`` profile's quick sizes on top of the profile's
    (:data:`~brainllm_utils.book.batch.PROFILES`; ``--smoke``): test runs on the ``tiny``
    sandbox."""

docdict["output_dir"] = """output_dir : str or path-like, default=OUTPUT_DIR
    Folder of the executed notebooks: ``book/notebooks/``, where the book renders them."""

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _indented(entry: str, indent: str) -> str:
    """``entry`` with every line after the first prefixed by ``indent`` (blank lines kept empty)."""
    lines = entry.splitlines()
    return "\n".join(lines[:1] + [indent + line if line.strip() else "" for line in lines[1:]])


def fill_doc(obj):
    """Fill the ``%(key)s`` placeholders of a docstring with entries of :data:`docdict`.

    Each placeholder is replaced by its entry; the entry's second and later lines get the
    indentation of the line that holds the placeholder, so an entry written at column 0
    lines up in a method's docstring as in a module-level function's. Text other than the
    placeholders is left as it is (a literal ``%`` needs no escaping).

    Parameters
    ----------
    obj : function or class
        The object whose ``__doc__`` is filled (in place). Works as a decorator. Objects
        without a docstring (or under ``python -OO``) are returned unchanged.

    Returns
    -------
    obj : function or class
        The same object, with its docstring filled.

    Raises
    ------
    KeyError
        For a placeholder whose key is not in :data:`docdict`; the message names the key
        and the object.

    Examples
    --------
    >>> @fill_doc
    ... def f(seed=0):
    ...     '''Draw.
    ...
    ...     Parameters
    ...     ----------
    ...     %(seed)s
    ...     '''
    >>> "Seed of" in f.__doc__
    True
    """
    doc = obj.__doc__
    if not doc:
        return obj
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    module = getattr(obj, "__module__", None)
    where = f"{module}.{name}" if module else name
    out = []
    for line in doc.split("\n"):
        indent = line[: len(line) - len(line.lstrip())]

        def replace(match, indent=indent):
            key = match.group(1)
            if key not in docdict:
                raise KeyError(f"fill_doc: {where} uses %({key})s, which is not a key of "
                               f"brainllm_utils._utils.docs.docdict")
            return _indented(docdict[key], indent)

        out.append(_PLACEHOLDER.sub(replace, line))
    obj.__doc__ = "\n".join(out)
    return obj
