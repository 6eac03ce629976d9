"""Shared docstring fragments: ``docdict`` entries and the ``fill_doc`` substitution."""

from __future__ import annotations

import pytest

from brainllm_utils._utils import docdict, fill_doc
from brainllm_utils._utils.docs import _PLACEHOLDER


def test_fill_doc_substitutes_and_indents_multiline_entries():
    @fill_doc
    def f(device="auto", seed=0):
        """Summary with a literal 5 % that needs no escaping.

        Parameters
        ----------
        %(device)s
        %(seed)s
        """

    entry = docdict["device"].splitlines()
    assert len(entry) > 2  # a multi-line entry
    lines = f.__doc__.splitlines()
    first = lines.index("        " + entry[0])  # at the placeholder's column
    for k, line in enumerate(entry[1:], start=1):
        assert lines[first + k] == "        " + line  # continuation lines keep their relative indent
    assert "5 %" in f.__doc__
    assert "%(" not in f.__doc__


def test_fill_doc_indents_to_the_placeholder_line_in_methods_and_classes():
    @fill_doc
    class C:
        """A class.

        Parameters
        ----------
        %(seed)s
        """

        @fill_doc
        def m(self, progress=False):
            """A method.

            Parameters
            ----------
            %(progress)s
            """

    seed = docdict["seed"].splitlines()
    assert "        " + seed[0] in C.__doc__.splitlines()
    assert "        " + seed[1] in C.__doc__.splitlines()
    prog = docdict["progress"].splitlines()
    assert "            " + prog[1] in C.m.__doc__.splitlines()


def test_fill_doc_unknown_key_names_the_key_and_the_object():
    def g():
        """Summary.

        %(not_a_key)s
        """

    with pytest.raises(KeyError, match=r"not_a_key.*") as info:
        fill_doc(g)
    assert "g" in str(info.value) and "test_docs" in str(info.value)


def test_fill_doc_without_a_docstring_returns_the_object():
    def h():
        pass

    assert fill_doc(h) is h and h.__doc__ is None


def test_docdict_entries_are_numpydoc_parameter_entries():
    for key, entry in docdict.items():
        lines = entry.splitlines()
        assert " : " in lines[0], key
        assert not lines[0].startswith(" "), key
        assert len(lines) >= 2, f"{key}: no description"
        assert all(line.startswith("    ") for line in lines[1:] if line.strip()), key
        assert not _PLACEHOLDER.search(entry), key
    for key in ("nsd", "subjects", "subject", "device", "seed", "cache", "ax", "progress",
                "results_dir", "data_home", "root"):
        assert key in docdict
