"""User plugins: feature spaces (and any registrations) declared once, seen by every process.

``features.register`` works in the process that calls it; a batch run executes notebooks in
papermill kernels, on Dask worker processes, perhaps on other machines. A registration that
must reach all of them is declared once, in one of two ways:

**A config file** (TOML). The batch runner reads ``--config PATH``, else ``$BRAINLLM_CONFIG``,
else ``brainllm.toml`` in the working folder, and exports its absolute path as
``$BRAINLLM_CONFIG`` to every kernel::

    [plugins]
    modules = ["mylab.features"]     # imported in every process (they call features.register,
                                     # register_pattern, register_precomputed,
                                     # vision.register_model)
    paths = ["./src"]                # put on sys.path first (relative to this file's folder)

    [feature_spaces.clip]            # a precomputed-feature file (features._precomputed)
    path = "features/clip.npz"       # relative to this file's folder
    dim = 512                        # optional: the file must have 512 features
    description = "CLIP ViT-B/32"    # optional
    # ids = "clip.nsdId.npy"         # optional, for a .npy matrix

Unknown tables or keys are errors (a typo never silently drops a plugin).

**An entry point** of an installed package, group ``brainllm_utils.plugins``
(:data:`PLUGIN_GROUP`), e.g. in its ``pyproject.toml``::

    [project.entry-points."brainllm_utils.plugins"]
    mylab = "mylab.features"               # a module: importing it registers
    mylab_setup = "mylab.features:setup"   # or a callable, called once without arguments

**Loading.** :mod:`brainllm_utils.features` loads both lazily, before the first lookup of a
name in each process (:func:`ensure_plugins`: entry points once, the config of
``$BRAINLLM_CONFIG`` / ``./brainllm.toml`` once per file version); a plugin that fails is
reported with a :class:`PluginWarning` and named in the error for an unknown space, and the
built-in spaces keep working. :func:`load_plugins` does the same strictly (it raises
:class:`PluginError` listing every problem) and :func:`check_plugins` also validates every
precomputed file: the batch runner calls it before any job starts. Loading twice is a no-op:
modules are imported once, and registering the same builder again under its name is allowed
(:func:`~brainllm_utils.features.register`).

``$BRAINLLM_CONFIG`` set to an empty string means "no config file" (the batch exports it so
when it found none, so that a kernel never picks up another folder's ``brainllm.toml``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import os
import re
import sys
import tomllib
import types
import warnings
from pathlib import Path

from . import _registry

__all__ = ["PLUGIN_GROUP", "CONFIG_ENV", "CONFIG_NAME", "PluginError", "PluginWarning",
           "PluginConfig", "PluginReport", "find_config", "read_config", "load_plugins",
           "ensure_plugins", "check_plugins", "plugin_problems", "plugin_fingerprint"]

#: The entry-point group an installed package declares its plugins in.
PLUGIN_GROUP = "brainllm_utils.plugins"
#: The environment variable holding the config file's path ("" = none).
CONFIG_ENV = "BRAINLLM_CONFIG"
#: The config file looked for in the working folder when ``$BRAINLLM_CONFIG`` is not set.
CONFIG_NAME = "brainllm.toml"

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SPACE_KEYS = {"path": str, "dim": int, "description": str, "ids": str}


class PluginError(ValueError):
    """A plugin cannot be loaded, or the config file is invalid (every problem listed)."""


class PluginWarning(UserWarning):
    """A plugin failed to load lazily (:func:`ensure_plugins`); built-in spaces still work."""


@dataclasses.dataclass(frozen=True)
class PluginConfig:
    """A parsed config file (:func:`read_config`).

    Attributes
    ----------
    path : pathlib.Path
        The file (absolute).
    modules : tuple of str
        Modules to import (``[plugins] modules``).
    paths : tuple of pathlib.Path
        Folders put on ``sys.path`` first (``[plugins] paths``, absolute).
    feature_spaces : dict of str to dict
        ``[feature_spaces.NAME]`` tables: ``path`` (absolute), ``dim``, ``description`` and
        ``ids`` (absolute or ``None``).
    """

    path: Path
    modules: tuple = ()
    paths: tuple = ()
    feature_spaces: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class PluginReport:
    """What a load did (:func:`load_plugins`, :func:`ensure_plugins`, :func:`check_plugins`).

    Attributes
    ----------
    config : pathlib.Path or None
        The config file read (``None``: none).
    modules : list of str
        Plugin modules imported (from the config).
    entry_points : list of str
        Entry points loaded, as ``name = value``.
    feature_spaces : list of str
        Feature spaces registered by this load (modules, entry points and the config's
        ``[feature_spaces]``).
    problems : list of str
        One line per problem (empty when everything loaded).
    """

    config: Path | None = None
    modules: list = dataclasses.field(default_factory=list)
    entry_points: list = dataclasses.field(default_factory=list)
    feature_spaces: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)


# per process: entry points loaded (name = value), config versions loaded, problems so far
_STATE: dict = {"entry_points_scanned": False, "entry_points": set(), "configs": set(),
                "loading": False, "problems": {}, "warned": set()}


# --------------------------------------------------------------------------- the config
def find_config(config=None) -> Path | None:
    """The config file in use: ``config``, else ``$BRAINLLM_CONFIG``, else ``./brainllm.toml``.

    Parameters
    ----------
    config : str or path-like, optional
        An explicit config file (the batch's ``--config``).

    Returns
    -------
    pathlib.Path or None
        The file (absolute), or ``None``: none given, ``$BRAINLLM_CONFIG`` empty or unset and
        no ``brainllm.toml`` in the working folder.

    Raises
    ------
    PluginError
        When ``config`` or ``$BRAINLLM_CONFIG`` names a file that does not exist.
    TypeError
        For a ``config`` that is not a path.
    """
    if config is not None:
        if isinstance(config, bool) or not isinstance(config, (str, os.PathLike)) \
                or not str(config):
            raise TypeError(f"config={config!r}: expected the path of a TOML config file or None")
        p = Path(config).expanduser()
        if not p.is_file():
            raise PluginError(f"config file {p} not found (given as config / --config)")
        return p.resolve()
    env = os.environ.get(CONFIG_ENV)
    if env is not None:
        if not env:
            return None
        p = Path(env).expanduser()
        if not p.is_file():
            raise PluginError(f"config file {p} not found (from ${CONFIG_ENV})")
        return p.resolve()
    try:
        p = Path.cwd() / CONFIG_NAME
    except OSError:  # the working folder was removed
        return None
    return p.resolve() if p.is_file() else None


def _str_list(value, where: str, problems: list) -> list:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where} = {value!r}: expected a list of non-empty strings")
        return []
    return value


def read_config(path) -> PluginConfig:
    """Parse and check a config file (format in the module doc); imports nothing.

    Parameters
    ----------
    path : str or path-like
        A TOML file.

    Returns
    -------
    PluginConfig
        Its modules, paths and precomputed feature spaces, paths made absolute (relative to
        the file's folder).

    Raises
    ------
    PluginError
        For a missing or unparsable file, and for every unknown table or key, value of the
        wrong type, module name that is not a dotted name, folder in ``paths`` that does not
        exist, and feature space without ``path`` (all listed, each with the file's name).
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"path={path!r}: expected the path of a TOML config file")
    path = Path(path).expanduser().resolve()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PluginError(f"config file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise PluginError(f"{path}: not valid TOML ({err})") from None
    problems: list[str] = []
    unknown = sorted(set(data) - {"plugins", "feature_spaces"})
    if unknown:
        problems.append(f"unknown table(s)/key(s) {unknown}; expected [plugins] and "
                        "[feature_spaces.NAME]")
    plugins = data.get("plugins", {})
    modules, paths = [], []
    if not isinstance(plugins, dict):
        problems.append(f"plugins = {plugins!r}: expected a table [plugins]")
        plugins = {}
    extra = sorted(set(plugins) - {"modules", "paths"})
    if extra:
        problems.append(f"[plugins]: unknown key(s) {extra}; expected modules and paths")
    for name in _str_list(plugins.get("modules", []), "[plugins] modules", problems):
        if _MODULE.fullmatch(name):
            modules.append(name)
        else:
            problems.append(f"[plugins] modules: {name!r} is not a module name (dotted "
                            "identifiers, e.g. 'mylab.features')")
    for folder in _str_list(plugins.get("paths", []), "[plugins] paths", problems):
        p = (path.parent / Path(folder).expanduser()).resolve()
        if p.is_dir():
            paths.append(p)
        else:
            problems.append(f"[plugins] paths: {folder!r} ({p}) is not a folder")
    spaces = {}
    table = data.get("feature_spaces", {})
    if not isinstance(table, dict):
        problems.append(f"feature_spaces = {table!r}: expected tables [feature_spaces.NAME]")
        table = {}
    for name, spec in table.items():
        where = f"[feature_spaces.{name}]" if re.fullmatch(r"[\w-]+", name) else \
            f'[feature_spaces."{name}"]'
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a table with path (and dim, description, ids)")
            continue
        bad = sorted(set(spec) - set(_SPACE_KEYS))
        if bad:
            problems.append(f"{where}: unknown key(s) {bad}; expected {sorted(_SPACE_KEYS)}")
        if "path" not in spec:
            problems.append(f"{where}: no path (the precomputed-feature file)")
            continue
        wrong = [f"{k} = {v!r} (expected {_SPACE_KEYS[k].__name__})" for k, v in spec.items()
                 if k in _SPACE_KEYS and (not isinstance(v, _SPACE_KEYS[k]) or isinstance(v, bool))]
        if wrong:
            problems.append(f"{where}: {', '.join(wrong)}")
            continue
        if "dim" in spec and spec["dim"] < 1:
            problems.append(f"{where}: dim = {spec['dim']}: expected an integer >= 1")
            continue
        spaces[name] = {
            "path": str((path.parent / Path(spec["path"]).expanduser()).resolve()),
            "dim": spec.get("dim"), "description": spec.get("description", ""),
            "ids": (str((path.parent / Path(spec["ids"]).expanduser()).resolve())
                    if "ids" in spec else None)}
    if problems:
        raise PluginError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return PluginConfig(path, tuple(modules), tuple(paths), spaces)


# --------------------------------------------------------------------------- loading
def _entry_points():
    return list(importlib.metadata.entry_points(group=PLUGIN_GROUP))


def _load_entry_points(report: PluginReport) -> None:
    try:
        eps = _entry_points()
    except Exception as err:  # noqa: BLE001 - broken metadata of an unrelated package
        report.problems.append(f"entry points of group {PLUGIN_GROUP!r} cannot be listed "
                               f"({type(err).__name__}: {err})")
        return
    for ep in eps:
        label = f"{ep.name} = {ep.value}"
        if label in _STATE["entry_points"]:
            continue
        try:
            obj = ep.load()
            if not isinstance(obj, types.ModuleType):
                if not callable(obj):
                    raise TypeError(f"{ep.value} is neither a module nor a callable")
                obj()
        except Exception as err:  # noqa: BLE001 - a plugin's own error, reported with its name
            report.problems.append(f"entry point {label} (group {PLUGIN_GROUP!r}): "
                                   f"{type(err).__name__}: {err}")
            continue
        _STATE["entry_points"].add(label)
        report.entry_points.append(label)


def _config_version(path: Path) -> tuple:
    st = path.stat()
    return (str(path), int(st.st_size), int(st.st_mtime_ns))


def _load_config(cfg: PluginConfig, report: PluginReport) -> None:
    from ._precomputed import register_precomputed

    for folder in reversed(cfg.paths):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    for name in cfg.modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - reported with the module and the file
            report.problems.append(f"module {name!r} ({cfg.path} [plugins] modules) cannot be "
                                   f"imported: {type(err).__name__}: {err}")
            continue
        report.modules.append(name)
    for name, spec in cfg.feature_spaces.items():
        try:
            register_precomputed(name, spec["path"], spec["dim"], spec["description"],
                                 ids=spec["ids"])
        except (ValueError, TypeError) as err:
            report.problems.append(f"[feature_spaces.{name}] of {cfg.path}: {err}")


def _load(config: Path | None, entry_points: bool, force: bool) -> PluginReport:
    report = PluginReport(config=config)
    if _STATE["loading"]:  # a plugin that looks a name up while it is being imported
        return report
    _STATE["loading"] = True
    before = set(_registry._REGISTRY)
    try:
        if entry_points and (force or not _STATE["entry_points_scanned"]):
            _STATE["entry_points_scanned"] = True
            _load_entry_points(report)
        if config is not None:
            try:
                version = _config_version(config)
            except OSError as err:
                report.problems.append(f"config file {config}: {err}")
                version = None
            if version is not None and (force or version not in _STATE["configs"]):
                _STATE["configs"].add(version)
                try:
                    _load_config(read_config(config), report)
                except PluginError as err:
                    report.problems.append(str(err))
    finally:
        _STATE["loading"] = False
    report.feature_spaces = sorted(set(_registry._REGISTRY) - before)
    key = str(config)
    if report.problems:
        _STATE["problems"][key] = list(report.problems)
    elif force or key not in _STATE["problems"]:
        _STATE["problems"].pop(key, None)
    return report


def load_plugins(config=None, *, entry_points: bool = True) -> PluginReport:
    """Load the entry points and the config file now, strictly.

    Parameters
    ----------
    config : str or path-like, optional
        The config file; ``None``: ``$BRAINLLM_CONFIG``, else ``./brainllm.toml`` if present
        (:func:`find_config`).
    entry_points : bool, default=True
        Also load the entry points of :data:`PLUGIN_GROUP`.

    Returns
    -------
    PluginReport
        What was loaded (what an earlier load did already is not repeated).

    Raises
    ------
    PluginError
        Listing every problem: a config file that is missing or invalid, a module that cannot
        be imported (with its error), an entry point that fails, a precomputed file that is
        missing or has an unsupported type (its content is checked by :func:`check_plugins`).
    """
    if not isinstance(entry_points, bool):
        raise TypeError(f"entry_points={entry_points!r}: expected True or False")
    report = _load(find_config(config), entry_points, force=True)
    if report.problems:
        raise PluginError(f"{len(report.problems)} plugin problem(s):\n  "
                          + "\n  ".join(report.problems))
    return report


def ensure_plugins() -> PluginReport:
    """Load the plugins of this process once (lazily; never raises).

    Entry points are loaded at the first call, the config file (``$BRAINLLM_CONFIG``, else
    ``./brainllm.toml``) at the first call that finds it (again when it changes). Problems
    are reported once with a :class:`PluginWarning` and kept for the message of an unknown
    space (:func:`plugin_problems`). :func:`~brainllm_utils.features.lookup`,
    :func:`~brainllm_utils.features.available` and :func:`~brainllm_utils.features.describe`
    call it; so may any other registry (e.g. the vision models').

    Returns
    -------
    PluginReport
        What this call loaded (usually nothing: loaded already).
    """
    if _STATE["loading"]:
        return PluginReport()
    try:
        config = find_config()
    except PluginError as err:
        config, problem = None, str(err)
    else:
        problem = None
    report = _load(config, True, force=False)
    if problem:
        report.problems.insert(0, problem)
        _STATE["problems"]["find_config"] = [problem]
    else:
        _STATE["problems"].pop("find_config", None)
    new = [p for p in report.problems if p not in _STATE["warned"]]
    if new:
        _STATE["warned"].update(new)
        warnings.warn(PluginWarning("brainllm plugins failed to load (built-in feature spaces "
                                    "still work):\n  " + "\n  ".join(new)), stacklevel=3)
    return report


def plugin_problems() -> list[str]:
    """Problems of the plugin loads of this process so far (one line each).

    Returns
    -------
    list of str
        Empty when every plugin loaded.
    """
    return [p for probs in _STATE["problems"].values() for p in probs]


def check_plugins(config=None, *, entry_points: bool = True) -> PluginReport:
    """Load every plugin and validate every precomputed-feature file: the batch's pre-start check.

    Parameters
    ----------
    config : str or path-like, optional
        As :func:`load_plugins`.
    entry_points : bool, default=True
        Also load the entry points of :data:`PLUGIN_GROUP`.

    Returns
    -------
    PluginReport
        What was loaded; ``problems`` lists everything wrong: the load's problems, then every
        registered precomputed space whose file is invalid (what is wrong, naming the file).
        Nothing is raised for them: the caller reports them all at once.

    Raises
    ------
    TypeError
        For a ``config`` that is not a path.
    """
    from ._precomputed import PrecomputedSpace

    if not isinstance(entry_points, bool):
        raise TypeError(f"entry_points={entry_points!r}: expected True or False")
    try:
        path = find_config(config)
    except PluginError as err:
        return PluginReport(problems=[str(err)])
    report = _load(path, entry_points, force=True)
    for name, space in sorted(_registry._REGISTRY.items()):
        if isinstance(space.builder, PrecomputedSpace):
            try:
                space.builder.check()
            except (ValueError, OSError) as err:
                report.problems.append(f"feature space {name!r}: {err}")
    return report


_registry.set_plugin_hooks(ensure_plugins, plugin_problems)


def _sha_file(path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def plugin_fingerprint(config=None) -> dict:
    """What the loaded plugins are made of, for the batch's job fingerprints.

    Parameters
    ----------
    config : str or path-like, optional
        The config file (:func:`find_config`); its content is part of the fingerprint.

    Returns
    -------
    fingerprint : dict
        ``config`` (sha256 of the file), ``modules`` (sha256 of each plugin module's source
        file), ``entry_points`` (``name = value`` with the providing package's version) and
        ``feature_spaces`` (content identity of every registered precomputed file); only the
        parts that exist (``{}``: no plugin at all, as before plugins existed).
    """
    from ._precomputed import PrecomputedSpace

    out: dict = {}
    path = find_config(config)
    if path is not None:
        out["config"] = _sha_file(path)
        try:
            modules = read_config(path).modules
        except PluginError:
            modules = ()
        files = {m: getattr(sys.modules.get(m), "__file__", None) for m in modules}
        if files:
            out["modules"] = {m: _sha_file(f) if f else "" for m, f in files.items()}
    if _STATE["entry_points"]:
        versions = {}
        try:
            for ep in _entry_points():
                dist = getattr(ep, "dist", None)
                versions[f"{ep.name} = {ep.value}"] = getattr(dist, "version", "") if dist else ""
        except Exception:  # noqa: BLE001 - listed problems are reported by check_plugins
            pass
        out["entry_points"] = {k: versions.get(k, "") for k in sorted(_STATE["entry_points"])}
    spaces = {}
    for name, space in sorted(_registry._REGISTRY.items()):
        if isinstance(space.builder, PrecomputedSpace):
            try:
                spaces[name] = space.builder.identity()
            except (ValueError, OSError):  # gone since it was checked: never equal to a run
                spaces[name] = {"path": space.builder.path, "missing": True}
    if spaces:
        out["feature_spaces"] = spaces
    return out
