"""The package's architecture, checked from its source: layers, faces and the public contract.

- Every module lives in a subpackage of a known layer (or is a top-level *face*).
- A module imports nothing from a higher layer; ``viz`` imports only ``_utils``.
- No circles: neither between modules nor between subpackages.
- No private names (or private modules) imported across subpackages.
- Faces (``brainllm_utils/<name>.py``) hold imports only (and a ``python -m`` guard).
- Every name an earlier issue made public is still importable from its old path.

The checks read the source with :mod:`ast` (function-local imports included), so a circle
hidden behind an import inside a function is still a circle.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from brainllm_utils._utils.paths import REPO_ROOT

PKG = REPO_ROOT / "brainllm_utils"

#: subpackage → layer; a module may import only from its own layer or below
LAYERS = {
    "_utils": 0,
    "nsd": 1,
    "synth": 2,  # beside features: the positive-control preset embeds captions with its encoder
    "features": 2,
    "rsa": 3,
    "encoding": 3,
    "vision": 3,
    "stats": 3,
    "chapters": 4,
    "viz": 5,
    "book": 6,
}
#: the leaf: figures take data and return Axes, they import no analysis
LEAF_ALLOWED = {"viz": {"_utils", "viz"}}

#: top-level modules that are public faces of names living in a subpackage
FACES = {
    "paths", "embeddings", "weights", "searchlight", "decoding", "caption_metrics",
    "rsa_analysis", "encoding_analysis", "vision_analysis", "findings", "batch", "site_check",
    "export",
}

#: every name an earlier issue made public, by its (old) import path
CONTRACT = {
    "nsd": ["NSD", "NSDFileError", "NSD_SESSIONS", "BETA_VERSION", "SPACES", "download_hint",
            "noise_ceiling_from_ncsnr"],
    "synth": ["PRESETS", "ROI_SPACES", "make_synthetic_nsd", "is_sandbox", "load_truth",
              "load_truth_array", "truth_table", "Design", "compute_ncsnr", "main", "BETAS", "CTABS",
              "GENERATIVE_MODEL", "NSDGENERAL_RADIUS", "N_SUBJECTS", "RESPONSE_COLUMNS", "ROI_ORDER",
              "SNR_RANGES", "STREAMS_NAMES", "STREAMS_SEEDS", "TRUTH_DIR", "VOLUME_ROIS"],
    "paths": ["REPO_ROOT", "get_data_home", "get_cache_dir", "get_results_dir", "get_models_dir",
              "atomic_path", "atomic_save_npy", "atomic_write_text", "file_lock"],
    "weights": ["MPNET", "MINILM", "MPNET_SHA256", "MINILM_SHA256", "ModelNotFoundError",
                "canonical_name", "find_mpnet_parts", "prepare_mpnet", "resolve_model", "sha256_file",
                "main"],
    "embeddings": ["DEFAULT_MODEL", "ModelSpec", "embed_sentences", "embed_captions", "get_model_spec",
                   "clear_model_cache"],
    "features": ["FeatureSpace", "register", "available", "describe", "build", "build_many",
                 "tag_captions", "scramble_caption", "load_word_vectors", "POS_GROUPS", "POS_FALLBACK",
                 "CATEGORY_RENAMES", "MPNET", "MINILM"],
    "rsa": ["RDM_METRICS", "COMPARE_METHODS", "compute_rdm", "compare_rdms", "rdm_to_square", "sub_rdm",
            "make_sample_sets", "save_sample_sets", "load_sample_sets", "get_sample_sets", "sampled_rsa",
            "SampledRSA", "roi_rsa", "pool_rdms", "noise_ceiling", "NoiseCeiling",
            "normalise_by_ceiling"],
    "searchlight": ["sphere_offsets", "volume_neighbourhoods", "surface_neighbourhoods",
                    "pad_neighbourhoods", "searchlight_rsa", "to_volume", "to_surface"],
    "stats": ["fdr_bh", "ttest_1samp_fdr", "paired_ttest", "sign_flip_test", "group_tests",
              "pairwise_model_tests", "bootstrap_rsa_ci"],
    "encoding": ["RidgeCV", "BandedRidgeCV", "GroupRidgeCV", "FracRidgeCV", "pearson_r", "r2_score",
                 "kfold_splits", "band_weight_grid", "train_test_encoding", "noise_ceiling_relation",
                 "in_silico_contrast", "CATEGORY_SENTENCES", "embed_sentence_sets"],
    "decoding": ["fit_decoder", "decode_embeddings", "embedding_correlation", "similarity_matrix",
                 "identification_rank", "identification_accuracy", "Retrieval", "CaptionRetriever",
                 "read_caption_file"],
    "caption_metrics": ["tokenize", "bleu", "sentence_bleu", "corpus_bleu", "rouge_l", "cider_d",
                        "score_captions", "human_ceiling"],
    "vision": ["BLTConfig", "TrainConfig", "PRESETS", "TrainingPool", "TrainedNetwork", "ModelStatus",
               "FeatureModel", "pool_coco_ids", "load_coco_images", "load_coco_annotations",
               "load_training_pool", "make_targets", "build_network", "preprocess", "augment",
               "train_network", "pool_split", "train_or_load", "train_networks", "load_checkpoint",
               "weights_hash", "extract_activations", "layer_names", "COMPARISON_MODELS",
               "comparison_model", "extract_features", "mean_average_precision", "transfer_readout",
               "transfer_readouts", "transfer_table"],
    "rsa_analysis": ["STREAMS_ROIS", "PAPER_ROIS", "dataset_key", "subject_image_ids", "subject_sets",
                     "rsa_design", "build_feature_table", "rows_of", "roi_patterns", "loso_ceilings",
                     "subject_rsa_table", "model_rdm_correlations", "role_reversal_pairs",
                     "role_reversal_similarity", "caption_variants", "winner_table",
                     "paired_differences", "paper_reference_numbers", "fsaverage_mesh",
                     "surface_searchlight", "volume_searchlight", "group_searchlight_test"],
    "encoding_analysis": ["DEFAULT_ALPHAS", "DECODING_ALPHAS", "DEFAULT_CONTRASTS",
                          "CONTRAST_CATEGORIES", "SubjectData", "EncodingResults", "resolve_subjects",
                          "subject_data", "fit_encoders", "group_map", "inter_subject_ceiling",
                          "noise_ceiling_r", "ceiling_summary", "subject_mean", "roi_table",
                          "partition_r2", "variance_partition", "partition_table",
                          "in_silico_contrasts", "category_contrast", "contrast_agreement",
                          "decode_subjects", "decode_by_roi", "caption_consistency",
                          "default_caption_bank", "reconstruct_captions", "caption_metric_table",
                          "gallery_selection", "truth_predictability", "expected_fraction",
                          "truth_roi_table"],
    "vision_analysis": ["OBJECTIVES", "chapter_configs", "pool_split", "validation_floors",
                        "train_objective_networks", "train_size_sweep", "training_table",
                        "split_histories", "network_features", "comparison_features",
                        "average_over_seeds", "network_rsa_table", "searchlight_contrast",
                        "transfer_image_ids", "transfer_summary", "size_alignment_table",
                        "paper_transfer_numbers", "paper_comparison_table"],
    "findings": ["FIELDS", "RQS", "finding", "record", "load", "findings_dir"],
    "export": ["ExportFolder", "results_folder", "export_surface_map", "export_volume_map",
               "export_table", "export_rdms", "make_rdms", "check_folder", "download_markdown",
               "main"],
    "viz": ["FSAVERAGE5_VERTICES", "image_montage", "plot_image_montage", "surface_axes", "plot_surface",
            "plot_roi_distributions", "plot_recovery", "plot_roi_rsa_bars", "plot_model_matrix",
            "plot_paired_differences", "plot_pair_similarity", "plot_volume_slices", "SURFACE_VIEWS",
            "plot_surface_views", "plot_r_vs_ceiling", "plot_roi_bars", "plot_variance_partition",
            "plot_decoding_r", "plot_identification_ranks", "plot_caption_gallery", "plot_metric_bars",
            "plot_training_curves", "plot_model_comparison", "plot_transfer",
            "plot_alignment_vs_training_size", "plot_learning_curves", "plot_alignment_curve",
            "plot_findings", "view_surface_map"],
    "book": ["NOTEBOOK_DIR", "OUTPUT_DIR", "list_notebooks", "notebook_parameters", "execute_notebook",
             "output_digest", "run_book"],
    "batch": ["PROFILES", "BatchError", "BatchParameterError", "Job", "JobResult", "data_fingerprint",
              "package_fingerprint", "profile_for", "plan_jobs", "validate_parameters", "run_jobs",
              "run_grid", "make_cluster", "read_manifest", "format_results", "git_revision",
              "package_versions", "main"],
    "site_check": ["CHROMIUM_FLAGS", "PageReport", "find_chromium", "toc_pages", "check_page",
                   "check_site", "main"],
}


# --------------------------------------------------------------------------- reading the source
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(module: str, level: int, target: str | None) -> str:
    """Absolute module name of a relative import inside ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(name: str) -> list[tuple[str, str | None]]:
    """``(target module, imported name or None)`` for every import of the package in ``name``
    (module level and inside functions alike)."""
    tree = ast.parse(MODULES[name].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.startswith("brainllm_utils")]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, node.level, node.module)
            if not base.startswith("brainllm_utils"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:  # ``from pkg import submodule``
                    out.append((sub, None))
                else:
                    out.append((base, alias.name))
    return out


def subpackage(name: str) -> str | None:
    """The subpackage a module belongs to (``None`` for the top-level package)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def _face(name: str) -> bool:
    return name.count(".") == 1 and subpackage(name) in FACES and not _is_package(name)


def _edges():
    for name in MODULES:
        for target, imported in imports_of(name):
            yield name, target, imported


# --------------------------------------------------------------------------- the tree
def test_every_module_has_a_layer_or_is_a_face():
    unknown = sorted(n for n in MODULES if n != "brainllm_utils" and not _face(n)
                     and subpackage(n) not in LAYERS)
    assert not unknown, f"modules outside every layer (add them to a subpackage): {unknown}"
    assert not (set(FACES) & set(LAYERS)), "a name cannot be both a face and a subpackage"


def test_no_import_star_and_every_subpackage_declares_its_api():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        stars = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                 and any(a.name == "*" for a in n.names)]
        assert not stars, f"{name}: `import *` (re-export names explicitly)"
        if _is_package(name):
            declared = [n for n in tree.body if isinstance(n, ast.Assign)
                        and any(getattr(t, "id", None) == "__all__" for t in n.targets)]
            assert declared, f"{name}: a subpackage declares its public API in __all__"


@pytest.mark.parametrize("sub", sorted(LAYERS))
def test_subpackage_api_resolves(sub):
    mod = importlib.import_module(f"brainllm_utils.{sub}")
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"brainllm_utils.{sub}.__all__ names missing: {missing}"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{sub}: duplicates in __all__"


def test_faces_hold_imports_only():
    for name in MODULES:
        if not _face(name):
            continue
        tree = ast.parse(MODULES[name].read_text())
        for i, node in enumerate(tree.body):
            if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # docstring
            if isinstance(node, ast.ImportFrom):
                continue
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]:
                continue
            if (isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
                    and ast.unparse(node.body[0]) == "raise SystemExit(main())" and len(node.body) == 1):
                continue  # ``python -m brainllm_utils.<face>``
            pytest.fail(f"{name} is a face and may only import; line {node.lineno}: "
                        f"{ast.unparse(node)[:80]}")


# --------------------------------------------------------------------------- the layers
def test_no_upward_edges():
    bad = []
    for src, target, _ in _edges():
        s, t = subpackage(src), subpackage(target)
        if _face(src) or s is None or t is None or s == t:
            continue
        if t in FACES and not _is_package(target):
            bad.append(f"{src} -> {target} (import from the subpackage, not from its face)")
        elif LAYERS[t] > LAYERS[s]:
            bad.append(f"{src} (layer {LAYERS[s]}) -> {target} (layer {LAYERS[t]})")
        elif s in LEAF_ALLOWED and t not in LEAF_ALLOWED[s]:
            bad.append(f"{src} -> {target} ({s} is a leaf: it imports only {sorted(LEAF_ALLOWED[s])})")
    assert not bad, "upward or forbidden imports:\n" + "\n".join(bad)


def test_no_private_names_across_subpackages():
    bad = []
    for src, target, imported in _edges():
        s, t = subpackage(src), subpackage(target)
        if t is None or s == t:
            continue
        inner = target.split(".")[2:]  # the path below the target subpackage
        if any(p.startswith("_") for p in inner):
            bad.append(f"{src} imports private module {target}")
        if imported is not None and imported.startswith("_"):
            bad.append(f"{src} imports private name {target}.{imported}")
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), and self-loops."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_circles_between_modules():
    graph: dict[str, set[str]] = {n: set() for n in MODULES}
    for src, target, _ in _edges():
        if target in MODULES and target != src:
            graph[src].add(target)
    assert not _cycles(graph), f"import circles: {_cycles(graph)}"


def test_no_circles_between_subpackages():
    graph: dict[str, set[str]] = {}
    for src, target, _ in _edges():
        s, t = subpackage(src), subpackage(target)
        if s and t and s != t and not _face(src):
            graph.setdefault(s, set()).add(t)
    assert not _cycles(graph), f"subpackage circles: {_cycles(graph)}"


def test_the_checks_can_fail():
    """The walker sees a function-local import and the cycle finder finds a circle."""
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert ("brainllm_utils.vision._blt", None) in imports_of("brainllm_utils.vision._train") or any(
        t == "brainllm_utils.vision._blt" for t, _ in imports_of("brainllm_utils.vision._train"))


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("path", sorted(CONTRACT))
def test_public_names_stay_importable(path):
    mod = importlib.import_module(f"brainllm_utils.{path}")
    missing = [n for n in CONTRACT[path] if not hasattr(mod, n)]
    assert not missing, f"brainllm_utils.{path} lost public names: {missing}"


@pytest.mark.parametrize("module", ["batch", "synth", "weights", "site_check"])
def test_command_lines_run(module):
    out = subprocess.run([sys.executable, "-m", f"brainllm_utils.{module}", "--help"],
                         capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()


def test_importing_the_package_and_its_numpy_layers_does_not_import_torch():
    code = ("import sys, brainllm_utils, brainllm_utils.nsd, brainllm_utils.synth, "
            "brainllm_utils.features, brainllm_utils.rsa, brainllm_utils.stats, "
            "brainllm_utils.encoding, brainllm_utils.vision, brainllm_utils.chapters, "
            "brainllm_utils.viz, brainllm_utils.book; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
