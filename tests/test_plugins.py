"""Plugins: feature spaces declared once (a config file or an entry point) reach the parent,
papermill kernels and Dask worker processes, and are validated before a batch starts."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from brainllm_utils import batch, features
from brainllm_utils.features import _plugins, _precomputed, _registry

IDS = [7, 3, 11, 3]  # asked in this order (a repeat included)


@pytest.fixture(autouse=True)
def _isolated(cache_dir, monkeypatch):
    """No config file unless a test sets one; registry, plugin state and sys.path restored."""
    monkeypatch.setenv("BRAINLLM_CONFIG", "")
    saved = (dict(_registry._REGISTRY), list(_registry._PATTERNS), dict(_registry._FAMILIES))
    state = {k: (set(v) if isinstance(v, set) else dict(v) if isinstance(v, dict) else v)
             for k, v in _plugins._STATE.items()}
    path, modules = list(sys.path), set(sys.modules)
    from brainllm_utils.vision import _user_models

    vision_models = dict(_user_models._REGISTRY)
    yield
    _user_models._REGISTRY.clear()
    _user_models._REGISTRY.update(vision_models)
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved[0])
    _registry._PATTERNS[:] = saved[1]
    _registry._FAMILIES.clear()
    _registry._FAMILIES.update(saved[2])
    _plugins._STATE.clear()
    _plugins._STATE.update(state)
    _precomputed._PARSED.clear()
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("mylab_"):
            del sys.modules[name]


PLUGIN_SOURCE = '''
import numpy as np

from brainllm_utils import features


@features.register("{space}", "a user space: seeded normal vector per nsdId", "plugins")
def _space(nsd, ids, **options):
    return np.stack([np.random.default_rng(int(i)).normal(size=5) for i in ids]).astype(np.float32)
'''


def _expected_plugin(ids) -> np.ndarray:
    return np.stack([np.random.default_rng(int(i)).normal(size=5) for i in ids]).astype(np.float32)


def _project(tmp_path, *, module_source=PLUGIN_SOURCE, extra="", with_file=True):
    """A user's project: src/<module>.py registering a space, a precomputed file, a config."""
    tag = uuid.uuid4().hex[:8]
    module, space = f"mylab_{tag}", f"mylab_space_{tag}"
    src = tmp_path / "project" / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / f"{module}.py").write_text(module_source.format(space=space))
    rng = np.random.default_rng(5)
    ids = np.arange(0, 40, dtype=np.int64)[::-1].copy()
    X = rng.normal(size=(ids.size, 3)).astype(np.float32)
    if with_file:
        np.savez(tmp_path / "project" / "feats.npz", nsdId=ids, features=X)
    config = tmp_path / "project" / "brainllm.toml"
    config.write_text(
        f'[plugins]\nmodules = ["{module}"]\npaths = ["./src"]\n\n'
        f'[feature_spaces.clip_{tag}]\npath = "feats.npz"\ndim = 3\ndescription = "my file"\n'
        + extra)
    truth = dict(zip(ids.tolist(), X))
    return dict(config=config, module=module, space=space, file_space=f"clip_{tag}",
                truth=lambda want: np.stack([truth[i] for i in want]), path=tmp_path / "project" / "feats.npz")


# --------------------------------------------------------------------------- the config file
def test_read_config_resolves_paths_from_its_folder(tmp_path):
    p = _project(tmp_path)
    cfg = features.read_config(p["config"])
    assert cfg.path == p["config"].resolve() and cfg.modules == (p["module"],)
    assert cfg.paths == ((tmp_path / "project" / "src").resolve(),)
    assert cfg.feature_spaces == {p["file_space"]: {
        "path": str(p["path"].resolve()), "dim": 3, "description": "my file", "ids": None}}


@pytest.mark.parametrize("text, match", [
    ("[plugin]\nmodules = []\n", r"unknown table\(s\)/key\(s\) \['plugin'\]"),
    ("[plugins]\nmodule = ['a']\n", r"\[plugins\]: unknown key\(s\) \['module'\]"),
    ("[plugins]\nmodules = 'a'\n", r"\[plugins\] modules = 'a': expected a list"),
    ("[plugins]\nmodules = ['a-b']\n", r"'a-b' is not a module name"),
    ("[plugins]\npaths = ['nowhere']\n", r"'nowhere' \(.*nowhere\) is not a folder"),
    ("[feature_spaces.x]\ndim = 3\n", r"\[feature_spaces.x\]: no path"),
    ("[feature_spaces.x]\npath = 'a.npz'\ndim = '3'\n", r"dim = '3' \(expected int\)"),
    ("[feature_spaces.x]\npath = 'a.npz'\ndim = 0\n", r"dim = 0: expected an integer >= 1"),
    ("[feature_spaces.x]\npath = 'a.npz'\nsize = 3\n", r"unknown key\(s\) \['size'\]"),
    ("[plugins\n", r"not valid TOML"),
])
def test_read_config_names_every_problem(tmp_path, text, match):
    path = tmp_path / "brainllm.toml"
    path.write_text(text)
    with pytest.raises(features.PluginError, match=match) as err:
        features.read_config(path)
    assert str(path) in str(err.value)


def test_find_config_precedence(tmp_path, monkeypatch):
    here = tmp_path / "cwd"
    here.mkdir()
    (here / "brainllm.toml").write_text("")
    other = tmp_path / "other.toml"
    other.write_text("")
    monkeypatch.chdir(here)
    assert features.find_config() is None  # BRAINLLM_CONFIG="" (the fixture): none
    monkeypatch.delenv("BRAINLLM_CONFIG")
    assert features.find_config() == (here / "brainllm.toml").resolve()
    monkeypatch.setenv("BRAINLLM_CONFIG", str(other))
    assert features.find_config() == other.resolve()
    assert features.find_config(here / "brainllm.toml") == (here / "brainllm.toml").resolve()
    with pytest.raises(features.PluginError, match=r"missing.toml not found \(given as config"):
        features.find_config(tmp_path / "missing.toml")
    monkeypatch.setenv("BRAINLLM_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(features.PluginError, match=r"gone.toml not found \(from \$BRAINLLM_CONFIG\)"):
        features.find_config()
    with pytest.raises(TypeError, match="config=3"):
        features.find_config(3)


# --------------------------------------------------------------------------- loading
def test_config_plugins_load_lazily_on_first_lookup(tmp_path, monkeypatch):
    p = _project(tmp_path)
    monkeypatch.setenv("BRAINLLM_CONFIG", str(p["config"]))
    assert p["module"] not in sys.modules
    # no explicit load: the first lookup of this process loads the config
    np.testing.assert_array_equal(features.build(p["space"], None, IDS), _expected_plugin(IDS))
    np.testing.assert_array_equal(features.build(p["file_space"], None, IDS), p["truth"](IDS))
    assert p["module"] in sys.modules
    assert features.describe().loc[p["file_space"], "group"] == "precomputed"
    # loading twice, strictly, or the module imported again: no "already registered"
    report = features.load_plugins(p["config"])
    assert report.problems == [] and report.modules == [p["module"]]
    features.load_plugins(p["config"])
    import importlib

    importlib.reload(sys.modules[p["module"]])
    np.testing.assert_array_equal(features.build(p["space"], None, IDS[:1]), _expected_plugin(IDS[:1]))


def test_a_broken_plugin_warns_and_builtins_still_work(tmp_path, monkeypatch):
    p = _project(tmp_path, module_source="import numpy\nraise RuntimeError('planted: {space}')\n")
    monkeypatch.setenv("BRAINLLM_CONFIG", str(p["config"]))
    with pytest.warns(features.PluginWarning, match=f"module '{p['module']}'.*planted"):
        assert "multihot" in features.available()
    with pytest.raises(ValueError, match=rf"unknown feature space '{p['space']}'.*plugins that "
                                         rf"failed to load: module '{p['module']}'.*RuntimeError"):
        features.lookup(p["space"])
    # the file space of the same config still loaded
    np.testing.assert_array_equal(features.build(p["file_space"], None, IDS), p["truth"](IDS))
    with pytest.raises(features.PluginError, match=r"(?s)1 plugin problem\(s\).*RuntimeError: planted"):
        features.load_plugins(p["config"])


def test_check_plugins_reads_every_precomputed_file(tmp_path):
    p = _project(tmp_path)
    assert features.check_plugins(p["config"]).problems == []
    np.savez(p["path"], nsdId=np.array([1, 2]), features=np.array([[0.0], [np.nan]]))
    problems = features.check_plugins(p["config"]).problems
    assert len(problems) == 1 and p["file_space"] in problems[0] and "NaN" in problems[0]
    assert str(p["path"].resolve()) in problems[0]


def _dist_info(site: Path, name: str, entry_points: str) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[brainllm_utils.plugins]\n{entry_points}\n")


def test_entry_points_register_spaces(tmp_path, monkeypatch):
    tag = uuid.uuid4().hex[:8]
    site = tmp_path / "site"
    site.mkdir()
    (site / f"mylab_ep_{tag}.py").write_text(
        PLUGIN_SOURCE.format(space=f"ep_module_{tag}")
        + f"\n\ndef setup():\n    features.register('ep_call_{tag}', 'from a callable')(_space)\n")
    _dist_info(site, f"mylab-dist-{tag}", f"mod = mylab_ep_{tag}\ncall = mylab_ep_{tag}:setup")
    monkeypatch.syspath_prepend(str(site))
    _plugins._STATE["entry_points_scanned"] = False  # as in a new process
    report = features.ensure_plugins()
    assert sorted(report.entry_points) == [f"call = mylab_ep_{tag}:setup", f"mod = mylab_ep_{tag}"]
    for name in (f"ep_module_{tag}", f"ep_call_{tag}"):
        np.testing.assert_array_equal(features.build(name, None, IDS), _expected_plugin(IDS))
    assert features.load_plugins().entry_points == []  # loaded once: nothing again
    fp = features.plugin_fingerprint()
    assert fp["entry_points"] == {f"call = mylab_ep_{tag}:setup": "1.0", f"mod = mylab_ep_{tag}": "1.0"}


def test_a_failing_entry_point_is_named(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _dist_info(site, "mylab-broken", "broken = mylab_no_such_module_xyz")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(features.PluginError, match=r"entry point broken = mylab_no_such_module_xyz "
                                                   r"\(group 'brainllm_utils.plugins'\): "
                                                   r"ModuleNotFoundError"):
        features.load_plugins()


# --------------------------------------------------------------------------- the batch
def _notebook(folder: Path) -> Path:
    """A notebook whose feature_spaces parameter names spaces; it prints what it built."""
    nb = new_notebook()
    params = new_code_cell("data_home = None\nfeature_spaces = ['multihot']\nids = [0]")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# 01_user_spaces"), params, new_code_cell(
        "import json, os\nfrom brainllm_utils import features\nfrom brainllm_utils.nsd import NSD\n"
        "nsd = NSD(data_home)\n"
        "out = {n: features.build(n, nsd, ids).tolist() for n in feature_spaces}\n"
        "print('RESULT', json.dumps({'pid': os.getpid(), "
        "'config': os.environ.get('BRAINLLM_CONFIG'), 'spaces': out}))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "01_user_spaces.ipynb")
    return folder


def _printed(path: Path) -> dict:
    nb = json.loads(path.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    line = next(x for x in text.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_plan_validates_user_spaces_and_keys_on_their_files(tiny_root, tmp_path, monkeypatch):
    p = _project(tmp_path)
    src = _notebook(tmp_path / "nbs")
    monkeypatch.chdir(tmp_path / "project")  # a relative precomputed:<path> is taken from here

    def plan(**kw):
        return batch.plan_jobs(["01_user_spaces"], data_home=tiny_root, output_dir=tmp_path / "out",
                               notebook_dir=src, config=p["config"], **kw)

    names = [p["space"], p["file_space"], "precomputed:feats.npz"]
    (job,) = plan(fixed={"feature_spaces": names, "ids": IDS})
    assert job.config == str(p["config"].resolve())
    assert job.parameters["feature_spaces"][2] == f"precomputed:{p['path'].resolve()}"
    before = job.fingerprint
    assert plan(fixed={"feature_spaces": names, "ids": IDS})[0].fingerprint == before
    X = np.load(p["path"])
    np.savez(p["path"], nsdId=X["nsdId"], features=X["features"] * 2)  # the file's content
    assert plan(fixed={"feature_spaces": names, "ids": IDS})[0].fingerprint != before
    with pytest.raises(batch.BatchParameterError, match=r"feature_spaces=.*unknown feature space "
                                                        r"'nope'"):
        plan(fixed={"feature_spaces": ["nope"]})
    np.savez(tmp_path / "project" / "dup.npz", nsdId=np.array([1, 1]), features=np.ones((2, 2)))
    with pytest.raises(batch.BatchParameterError, match=r"dup.npz: 1 nsdId\(s\) appear more than once"):
        plan(fixed={"feature_spaces": ["precomputed:dup.npz"]})


@pytest.mark.parametrize("problem", ["unknown key", "module", "missing file", "invalid file",
                                     "missing config"])
def test_a_bad_config_stops_the_batch_before_anything_runs(problem, tiny_root, tmp_path, capsys):
    p = _project(tmp_path)
    src = _notebook(tmp_path / "nbs")
    config = p["config"]
    if problem == "unknown key":
        config.write_text(config.read_text() + "colour = 'blue'\n")
        match = r"unknown key\(s\) \['colour'\]"
    elif problem == "module":
        config.write_text(config.read_text().replace(p["module"], "mylab_not_installed"))
        match = r"module 'mylab_not_installed' .* cannot be imported: ModuleNotFoundError"
    elif problem == "missing file":
        p["path"].unlink()
        match = r"feats.npz not found"
    elif problem == "invalid file":
        np.savez(p["path"], nsdId=np.array([1, 2]), features=np.array([[1.0], [np.inf]]))
        match = r"feats.npz: 1 row\(s\) hold NaN or infinite"
    else:
        config = tmp_path / "nowhere.toml"
        match = r"nowhere.toml not found"
    out = tmp_path / "out"
    with pytest.raises(batch.BatchParameterError, match=match):
        batch.plan_jobs(["01_user_spaces"], data_home=tiny_root, output_dir=out,
                        notebook_dir=src, config=config)
    rc = batch.main(["run", "01_user_spaces", "--data", str(tiny_root), "--notebook-dir", str(src),
                     "--output-dir", str(out), "--scheduler", "serial", "--config", str(config)])
    assert rc == 2 and "error:" in capsys.readouterr().err
    assert not out.exists() or not list(out.glob("*.ipynb")), "a job ran"


@pytest.mark.slow
def test_user_spaces_reach_the_kernel_on_a_dask_worker(tiny_root, tmp_path, monkeypatch):
    """End to end: the config (a plugin module and a precomputed file) is given only to the
    batch, an entry point is installed; a notebook run by a papermill kernel on a LocalCluster
    worker process builds every space and gets exactly the parent's numbers."""
    p = _project(tmp_path)
    src = _notebook(tmp_path / "nbs")
    # and an installed package's entry point (its site folder on the kernels' PYTHONPATH)
    tag = uuid.uuid4().hex[:8]
    site = tmp_path / "site"
    site.mkdir()
    (site / f"mylab_ep_{tag}.py").write_text(PLUGIN_SOURCE.format(space=f"ep_space_{tag}"))
    _dist_info(site, f"mylab-dist-{tag}", f"mod = mylab_ep_{tag}")
    monkeypatch.syspath_prepend(str(site))
    _plugins._STATE["entry_points_scanned"] = False
    names = [p["space"], p["file_space"], f"precomputed:{p['path']}", f"ep_space_{tag}"]
    jobs = batch.plan_jobs(["01_user_spaces"], fixed={"feature_spaces": names, "ids": IDS},
                           data_home=tiny_root, output_dir=tmp_path / "out", notebook_dir=src,
                           config=p["config"])
    assert os.environ["BRAINLLM_CONFIG"] == ""  # the parent's environment names no config
    pythonpath = os.pathsep.join([str(site)] + [x for x in [os.environ.get("PYTHONPATH")] if x])
    (res,) = batch.run_jobs(jobs, scheduler="local", workers=1, progress=False,
                            env={"BRAINLLM_CACHE": str(tmp_path / "kernel_cache"),
                                 "PYTHONPATH": pythonpath})
    assert res.status == "executed"
    worker_pid = int(res.worker.rsplit(":", 1)[1])
    manifest = batch.read_manifest(tmp_path / "out" / "manifest.json")["notebooks"]
    assert manifest["01_user_spaces.ipynb"]["config"] == str(p["config"].resolve())
    assert worker_pid != os.getpid()
    got = _printed(jobs[0].output)
    assert got["pid"] not in (os.getpid(), worker_pid)
    assert got["config"] == str(p["config"].resolve())
    np.testing.assert_array_equal(np.float32(got["spaces"][p["space"]]), _expected_plugin(IDS))
    np.testing.assert_array_equal(np.float32(got["spaces"][p["file_space"]]), p["truth"](IDS))
    np.testing.assert_array_equal(np.float32(got["spaces"][names[2]]), p["truth"](IDS))
    np.testing.assert_array_equal(np.float32(got["spaces"][names[3]]), _expected_plugin(IDS))
    for name in names:  # the parent builds the same numbers
        np.testing.assert_array_equal(np.float32(got["spaces"][name]),
                                      features.build(name, None, IDS))


@pytest.mark.slow
def test_chapter_01_runs_user_spaces_on_a_dask_worker(tiny_root, tmp_path):
    """A book chapter (01, smoke sizes) whose feature_spaces are only a plugin module's space
    and a config-declared precomputed file, run on a LocalCluster worker."""
    from brainllm_utils.nsd import NSD

    p = _project(tmp_path, with_file=False)
    n = NSD(tiny_root).n_images
    rng = np.random.default_rng(9)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    np.savez(p["path"], nsdId=np.arange(n)[::-1], features=X[::-1])
    p["config"].write_text(p["config"].read_text().replace("dim = 3", "dim = 4"))
    names = [p["space"], p["file_space"]]
    jobs = batch.plan_jobs(["01_feature_spaces"], fixed={"feature_spaces": names},
                           data_home=tiny_root, smoke=True, output_dir=tmp_path / "out",
                           config=p["config"])
    results = tmp_path / "results"
    (res,) = batch.run_jobs(jobs, scheduler="local", workers=1, progress=False,
                            env={"BRAINLLM_CACHE": str(tmp_path / "kernel_cache"),
                                 "BRAINLLM_RESULTS": str(results)})
    assert res.status == "executed" and int(res.worker.rsplit(":", 1)[1]) != os.getpid()
    text = jobs[0].output.read_text()
    assert "my file" in text and "seeded normal vector per nsdId" in text  # describe() rows
    (table,) = results.rglob("model_rdm_correlations*.csv")
    import pandas as pd

    M = pd.read_csv(table, index_col=0)
    assert set(names) <= set(M.index)
    assert np.isfinite(M.loc[names[0], names[1]]) and M.loc[names[0], names[0]] == pytest.approx(1)



VISION_PLUGIN = PLUGIN_SOURCE + '''

from brainllm_utils import vision

vision.register_model("{space}_net", lambda images: images.reshape(len(images), -1)[:, :4] / 255.0,
                      description="a user callable", version="1")
'''


def test_vision_models_of_a_plugin_are_loaded_and_checked_by_the_batch(tiny_root, tmp_path,
                                                                        monkeypatch):
    from brainllm_utils import vision

    p = _project(tmp_path, module_source=VISION_PLUGIN)
    net = f"{p['space']}_net"
    monkeypatch.setenv("BRAINLLM_CONFIG", str(p["config"]))
    assert net in vision.registered_models()  # loaded by the vision lookup itself
    monkeypatch.setenv("BRAINLLM_CONFIG", "")
    src = tmp_path / "nbs"
    nb = new_notebook()
    params = new_code_cell("data_home = None\ncomparison_models = []\nfeature_spaces = ['multihot']")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# 01_vision"), params, new_code_cell("print(1)")]
    src.mkdir()
    nbformat.write(nb, src / "01_vision.ipynb")

    def plan(**fixed):
        return batch.plan_jobs(["01_vision"], data_home=tiny_root, output_dir=tmp_path / "out",
                               notebook_dir=src, config=p["config"], fixed=fixed)

    (job,) = plan(comparison_models=["untrained_alexnet", net, f"{net}:output"])
    assert job.parameters["comparison_models"][1] == net
    with pytest.raises(batch.BatchParameterError, match=r"comparison_models=.*unknown vision model "
                                                        r"'nope_net'.*registered: \[.*_net"):
        plan(comparison_models=["nope_net"])
    # hf: names are checked before the start too (parsed, the model's config read)
    with pytest.raises(batch.BatchParameterError, match=r"feature_spaces=.*'hf:.*no_model_here' is "
                                                        r"not installed: model .* not available"):
        plan(feature_spaces=[f"hf:{tmp_path / 'no_model_here'}"])
    with pytest.raises(batch.BatchParameterError, match=r"unknown option 'bogus'"):
        plan(feature_spaces=["hf:x?bogus=1"])


def test_a_relative_hf_model_folder_is_made_absolute_for_the_kernels(tiny_root, tmp_path,
                                                                    monkeypatch):
    from test_text_models import _build

    _build(tmp_path / "project" / "models" / "tiny_bert", "bert")
    src = _notebook(tmp_path / "nbs")
    monkeypatch.chdir(tmp_path / "project")
    name = "hf:models/tiny_bert?layer=2&pooling=cls"
    (job,) = batch.plan_jobs(["01_user_spaces"], fixed={"feature_spaces": [name]},
                             data_home=tiny_root, output_dir=tmp_path / "out", notebook_dir=src)
    folder = (tmp_path / "project" / "models" / "tiny_bert").resolve()
    assert job.parameters["feature_spaces"] == [
        features.text_model_name(str(folder), layer=2, pooling="cls")]
    assert features.parse_text_model_name(job.parameters["feature_spaces"][0]) == (
        str(folder), {"layer": 2, "pooling": "cls"})


def test_the_command_line_takes_the_config(tiny_root, tmp_path):
    p = _project(tmp_path)
    src = _notebook(tmp_path / "nbs")
    out = tmp_path / "out"
    names = [p["space"], p["file_space"]]
    rc = batch.main(["run", "01_user_spaces", "--data", str(tiny_root), "--notebook-dir", str(src),
                     "--output-dir", str(out), "--scheduler", "serial", "--config", str(p["config"]),
                     "--set", f"feature_spaces={json.dumps(names)}", "--set", f"ids={json.dumps(IDS)}"])
    assert rc == 0
    got = _printed(out / "01_user_spaces.ipynb")
    assert got["config"] == str(p["config"].resolve())
    np.testing.assert_array_equal(np.float32(got["spaces"][names[0]]), _expected_plugin(IDS))
    np.testing.assert_array_equal(np.float32(got["spaces"][names[1]]), p["truth"](IDS))
