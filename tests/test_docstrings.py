"""Every public function, method and class of the listed modules has a numpydoc docstring.

Public: the names in a module's ``__all__`` (or, without one, its names that do not start
with ``_``) that are functions or classes defined in that module, and the public methods
of those classes (inherited ones included when defined in the same module), and the public
methods of the module's private ``_*Mixin`` classes (they are public through the class that
mixes them in, e.g. ``NSD.betas`` defined on ``nsd._betas._BetasMixin``). Properties,
cached properties and ``functools.cache`` methods count as methods. Each needs

- a summary that fits on one line (details go in the paragraphs after it);
- a ``Parameters`` section naming every parameter of the signature (``self``/``cls`` aside;
  ``*args``/``**kwargs`` may be written with their stars), and no parameter that the
  signature lacks; for a dataclass, its fields may be listed under ``Attributes`` instead;
  a class without an ``__init__`` of its own in Python (an exception class) has none;
- a ``Returns`` (or ``Yields``) section when the function returns (or yields) a value;
- no ``%(key)s`` placeholder left unfilled (a missing ``@fill_doc``).

Docstrings are parsed with :mod:`numpydoc.docscrape`. Modules join the list as their
docstrings are written.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import textwrap

# numpydoc is pinned in requirements.txt: imported plainly, so a missing install fails loudly
import pytest
from numpydoc import docscrape

MODULES = [
    "brainllm_utils._utils.docs",
    "brainllm_utils._utils.paths",
    "brainllm_utils._utils.device",
    "brainllm_utils._utils.cache",
    "brainllm_utils._utils.numeric",
    "brainllm_utils._utils.benchrecord",
    "brainllm_utils.rsa._ceiling",
    "brainllm_utils.rsa._compare",
    "brainllm_utils.rsa._condensed",
    "brainllm_utils.rsa._inference",
    "brainllm_utils.rsa._interop",
    "brainllm_utils.rsa._neighbourhoods",
    "brainllm_utils.rsa._rdm",
    "brainllm_utils.rsa._sampled",
    "brainllm_utils.rsa._sampling",
    "brainllm_utils.rsa._searchlight",
    "brainllm_utils.stats",
    "brainllm_utils.nsd.layout",
    "brainllm_utils.nsd._reader",
    "brainllm_utils.nsd._design",
    "brainllm_utils.nsd._stimuli",
    "brainllm_utils.nsd._atlas",
    "brainllm_utils.nsd._transforms",
    "brainllm_utils.nsd._betas",
    "brainllm_utils.nsd._manifest",
    "brainllm_utils.nsd._download",
    "brainllm_utils.nsd.__main__",
    "brainllm_utils.nsd._cli",
    "brainllm_utils.nsd._check",
    "brainllm_utils.features._registry",
    "brainllm_utils.features._text",
    "brainllm_utils.features._spaces",
    "brainllm_utils.features._static",
    "brainllm_utils.features._precomputed",
    "brainllm_utils.features._plugins",
    "brainllm_utils.features.embeddings",
    "brainllm_utils.features._hf",
    "brainllm_utils.features.weights",
    "brainllm_utils.vision._pool",
    "brainllm_utils.vision._blt",
    "brainllm_utils.vision._train",
    "brainllm_utils.vision._activations",
    "brainllm_utils.vision._comparison",
    "brainllm_utils.vision._transfer",
    "brainllm_utils.vision._user_models",
    "brainllm_utils.encoding._sklearn_api",
    "brainllm_utils.encoding._solvers",
    "brainllm_utils.encoding._protocol",
    "brainllm_utils.encoding._scoring",
    "brainllm_utils.encoding.decoding",
    "brainllm_utils.encoding.caption_metrics",
    "brainllm_utils.viz._axes",
    "brainllm_utils.viz._brain",
    "brainllm_utils.viz.ch00_data_tour",
    "brainllm_utils.viz.ch01_feature_spaces",
    "brainllm_utils.viz.ch02_rsa",
    "brainllm_utils.viz.ch03_encoding",
    "brainllm_utils.viz.ch04_decoding",
    "brainllm_utils.viz.ch05_image_to_llm",
    "brainllm_utils.viz.ch06_summary",
    "brainllm_utils.viz.ch07_reproduction",
    "brainllm_utils.viz.rq2",
    "brainllm_utils.viz.power",
    "brainllm_utils.viz.model_comparison",
    "brainllm_utils.synth._generate",
    "brainllm_utils.synth._scenes",
    "brainllm_utils.synth._truth",
    "brainllm_utils.synth._mesh",
    "brainllm_utils.synth._stream",
    "brainllm_utils.chapters._common",
    "brainllm_utils.chapters.ch01_feature_spaces",
    "brainllm_utils.chapters.ch02_rsa",
    "brainllm_utils.chapters.ch03_encoding",
    "brainllm_utils.chapters.ch04_decoding",
    "brainllm_utils.chapters.ch05_image_to_llm",
    "brainllm_utils.chapters.reference",
    "brainllm_utils.chapters.findings",
    "brainllm_utils.chapters._export",
    "brainllm_utils.chapters.reproduction",
    "brainllm_utils.chapters.rq2",
    "brainllm_utils.chapters.power",
    "brainllm_utils.chapters.model_comparison",
    "brainllm_utils.book._execute",
    "brainllm_utils.book.batch",
    "brainllm_utils.book.site_check",
    "brainllm_utils.book.cli",
    "brainllm_utils.book.sphinx_ext",
    "brainllm_utils.book.install",
]


# ----------------------------------------------------------------------------- the checker
def _public_objects(module):
    """(qualified name, object) of the public functions, classes and methods of ``module``."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    mixins = [n for n, obj in vars(module).items()
              if n.startswith("_") and n.endswith("Mixin") and inspect.isclass(obj)
              and obj.__module__ == module.__name__]
    out, seen = [], set()
    for name in list(names) + mixins:
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if obj.__module__ != module.__name__ or id(obj) in seen:
            continue  # re-exported (checked in its own module) or an alias
        seen.add(id(obj))
        if name not in mixins:
            out.append((name, obj))
        if inspect.isclass(obj):
            for attr in dir(obj):
                if attr.startswith("_"):
                    continue
                raw = inspect.getattr_static(obj, attr)
                if isinstance(raw, (classmethod, staticmethod)):
                    raw = raw.__func__
                if isinstance(raw, functools.cached_property):
                    raw = property(raw.func, doc=raw.__doc__)
                elif not inspect.isfunction(raw) and inspect.isfunction(getattr(raw, "__wrapped__", None)):
                    raw = raw.__wrapped__  # functools.cache / lru_cache
                func = raw.fget if isinstance(raw, property) else raw
                if inspect.isfunction(func) and func.__module__ == module.__name__ and id(func) not in seen:
                    seen.add(id(func))
                    out.append((f"{name}.{attr}", raw))
    return out


def _returns_value(func) -> tuple[bool, bool]:
    """(returns a value, yields a value), from the function's own body (nested defs aside)."""
    try:
        src = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False, False
    node = ast.parse(src).body[0]
    returns = yields = False
    stack = list(ast.iter_child_nodes(node))
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(n, ast.Return) and n.value is not None and not (
            isinstance(n.value, ast.Constant) and n.value.value is None
        ):
            returns = True
        if isinstance(n, (ast.Yield, ast.YieldFrom)) and getattr(n, "value", None) is not None:
            yields = True
        stack.extend(ast.iter_child_nodes(n))
    return returns, yields


def _documented(section) -> set[str]:
    names = set()
    for p in section:
        for part in p.name.split(","):
            part = part.strip()
            if part:
                names.add(part)
    return names


def docstring_problems(name: str, obj) -> list[str]:
    """What the numpydoc docstring of ``obj`` lacks (an empty list when it is complete)."""
    is_property = isinstance(obj, property)
    doc = inspect.cleandoc(obj.__doc__) if obj.__doc__ else None
    if not doc or (dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}(")):
        return [f"{name}: no docstring"]
    problems = []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith("%(") and stripped.endswith(")s"):
            problems.append(f"{name}: unfilled placeholder {stripped} (missing @fill_doc?)")
    parsed = docscrape.NumpyDocString(doc)
    if not "".join(parsed["Summary"]).strip():
        problems.append(f"{name}: no summary line")
    elif len(parsed["Summary"]) > 1:
        problems.append(f"{name}: the summary takes {len(parsed['Summary'])} lines, not one")
    if is_property:
        return problems
    func = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return problems
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    if inspect.isclass(obj) and not inspect.isfunction(func):
        params = []  # a builtin's __init__ (object, Exception): nothing of the class's own
    documented = _documented(parsed["Parameters"])
    if dataclasses.is_dataclass(obj):
        documented |= _documented(parsed["Attributes"])
    expected = set()
    for p in params:
        star = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        accepted = {p.name, star + p.name}
        expected |= accepted
        if not accepted & documented:
            problems.append(f"{name}: parameter {star}{p.name} not documented")
    for extra in sorted(documented - expected):
        if not dataclasses.is_dataclass(obj) or extra in _documented(parsed["Parameters"]):
            problems.append(f"{name}: documents {extra}, which is not in the signature")
    if inspect.isfunction(obj):
        returns, yields = _returns_value(obj)
        if returns and not parsed["Returns"]:
            problems.append(f"{name}: returns a value but has no Returns section")
        if yields and not parsed["Yields"]:
            problems.append(f"{name}: yields a value but has no Yields section")
    return problems


# ----------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("module_name", MODULES)
def test_public_docstrings_are_complete(module_name):
    module = importlib.import_module(module_name)
    objects = _public_objects(module)
    problems = [p for name, obj in objects for p in docstring_problems(f"{module_name}.{name}", obj)]
    assert not problems, "\n".join(problems)


def test_the_checker_reports_what_is_missing():
    def missing_param(a, b):
        """Sum.

        Parameters
        ----------
        a : int
            First.

        Returns
        -------
        int
        """
        return a + b

    def no_returns(a):
        """Double.

        Parameters
        ----------
        a : int
            A number.
        """
        return 2 * a

    def stale(a):
        """Nothing.

        Parameters
        ----------
        a : int
            A number.
        b : int
            Gone.
        """

    def unfilled(seed=0):
        """Nothing.

        Parameters
        ----------
        %(seed)s
        """

    def long_summary():
        """A summary that goes on
        over two lines.
        """

    def complete(a, *args, **kwargs):
        """Collect.

        Parameters
        ----------
        a : int
            A number.
        *args : int
            More.
        **kwargs
            Options.

        Yields
        ------
        int
        """
        yield a

    assert docstring_problems("m", missing_param) == ["m: parameter b not documented"]
    assert docstring_problems("n", no_returns) == ["n: returns a value but has no Returns section"]
    assert docstring_problems("s", stale) == ["s: documents b, which is not in the signature"]
    assert any("placeholder" in p for p in docstring_problems("u", unfilled))
    assert docstring_problems("l", long_summary) == ["l: the summary takes 2 lines, not one"]
    assert docstring_problems("c", complete) == []
    assert docstring_problems("x", lambda: None) == ["x: no docstring"]


def test_the_checker_sees_classes_methods_and_dataclass_fields():
    import types

    @dataclasses.dataclass
    class Result:
        """A result.

        Attributes
        ----------
        value : float
            The value.
        """

        value: float
        n: int

    class Model:
        """A model.

        Parameters
        ----------
        alpha : float
            Penalty.
        """

        def __init__(self, alpha=1.0):
            self.alpha = alpha

        def fit(self, X):
            return self

    mod = types.ModuleType("fake_mod")
    Result.__module__ = Model.__module__ = Model.fit.__module__ = "fake_mod"
    mod.Result, mod.Model, mod.__all__ = Result, Model, ["Result", "Model"]
    names = [n for n, _ in _public_objects(mod)]
    assert names == ["Result", "Model", "Model.fit"]
    assert docstring_problems("Result", Result) == ["Result: parameter n not documented"]
    assert docstring_problems("Model", Model) == []
    assert docstring_problems("Model.fit", Model.fit) == ["Model.fit: no docstring"]


def test_the_checker_sees_mixin_methods_cached_properties_and_cached_methods():
    import types

    class _ThingMixin:
        """Methods of a public class, defined on a private mixin."""

        def read(self, subject):
            """Read."""
            return subject

        @functools.cached_property
        def table(self):
            return 1

        @functools.cache
        def count(self, n):
            """Count.

            Parameters
            ----------
            n : int
                How many.

            Returns
            -------
            int
            """
            return n

        def _private(self):
            pass

    mod = types.ModuleType("fake_mixins")
    _ThingMixin.__module__ = "fake_mixins"
    for f in (_ThingMixin.read, _ThingMixin.table.func, _ThingMixin.count.__wrapped__):
        f.__module__ = "fake_mixins"
    mod._ThingMixin, mod.__all__ = _ThingMixin, []
    objects = dict(_public_objects(mod))
    assert sorted(objects) == ["_ThingMixin.count", "_ThingMixin.read", "_ThingMixin.table"]
    assert docstring_problems("r", objects["_ThingMixin.read"]) == [
        "r: parameter subject not documented", "r: returns a value but has no Returns section"]
    assert docstring_problems("t", objects["_ThingMixin.table"]) == ["t: no docstring"]
    assert docstring_problems("c", objects["_ThingMixin.count"]) == []


def test_every_module_of_the_package_is_checked():
    """A new module cannot skip the check: every module but the subpackages' ``__init__`` (which
    re-export), the ``__main__`` entry points and the public faces (imports only) is listed."""
    from pathlib import Path

    import brainllm_utils

    pkg = Path(brainllm_utils.__file__).parent
    faces = {"paths", "embeddings", "weights", "searchlight", "decoding", "caption_metrics",
             "rsa_analysis", "encoding_analysis", "vision_analysis", "findings", "batch", "site_check",
             "export"}
    found = set()
    for path in pkg.rglob("*.py"):
        parts = path.relative_to(pkg.parent).with_suffix("").parts
        if parts[-1] in ("__init__", "__main__") or (len(parts) == 2 and parts[1] in faces):
            continue
        found.add(".".join(parts))
    missing = sorted(found - set(MODULES))
    assert not missing, f"modules without a docstring check (add them to MODULES): {missing}"
