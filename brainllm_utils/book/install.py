"""Install the book's pinned environment with uv where it is available, else pip.

``make install`` runs this file by path, standard library only (the venv is still empty):

    .venv/bin/python -I brainllm_utils/book/install.py [--installer auto|uv|pip] -- ARGS...

``ARGS`` are ``pip install`` arguments (``-r requirements.txt``, ``--no-deps``, ``-e .``,
``--no-build-isolation``). uv (a pip-compatible installer) installs the same pins from the
same indexes in seconds where pip takes minutes: a fresh venv's 150 packages took ~16 s
instead of ~200 s on 2 cores. With ``auto`` (the default) uv is installed into the venv
with pip first; pip does the install when uv cannot be installed, when pip's configuration
holds a setting uv cannot take over (:data:`UV_OPTIONS` lists those it can), or when uv
fails (the reason is printed). Neither compiles bytecode up front: modules compile when
first imported.

pip's configuration (``pip config list``: files and ``PIP_*`` variables) is translated into
uv's flags, so a site's index, find-links, constraints and certificates apply to both, and
``--index-strategy unsafe-best-match`` keeps pip's rule of taking the best version across
every index.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

#: pip configuration keys (section prefix removed) → uv flag; a multi-valued key (space or
#: newline separated, as pip reads it) gives the flag once per value
UV_OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "no-index": "--no-index",
    "trusted-host": "--allow-insecure-host",
}
#: pip settings that change nothing uv does (uv reads the system's certificates with
#: ``--native-tls``; ``cert`` is passed as ``SSL_CERT_FILE``)
IGNORED = {"default-timeout", "disable-pip-version-check", "timeout", "progress-bar",
           "no-warn-script-location", "root-user-action", "cert", "no-cache-dir"}
#: pip's install arguments that uv takes as they are (with their value when they have one)
_PASS = {"-r": 1, "--requirement": 1, "-c": 1, "--constraint": 1, "-e": 1, "--editable": 1,
         "--no-deps": 0, "--no-build-isolation": 0, "--quiet": 0, "-q": 0, "--upgrade": 0,
         "-U": 0}
#: lines of pip's output that say nothing (an empty local index for a package)
_NOISE = "is ignored: it is neither"


def pip_config(python: str) -> dict[str, str]:
    """pip's effective configuration (``pip config list``).

    Parameters
    ----------
    python : str
        The interpreter whose pip is asked.

    Returns
    -------
    conf : dict of str to str
        ``{"section.key": value}``, e.g. ``{"global.find-links": "/opt/wheels"}``.
    """
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         check=True).stdout
    conf = {}
    for line in out.splitlines():
        m = re.fullmatch(r"\s*([^=\s]+)\s*=\s*(['\"]?)(.*)\2\s*", line)
        if m:
            conf[m.group(1)] = m.group(3)
    return conf


def uv_flags(conf: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """uv flags and environment variables equivalent to pip's configuration ``conf``.

    Parameters
    ----------
    conf : dict of str to str
        ``pip config list`` entries, ``section.key`` → value (sections ``global``,
        ``install``, and ``:env:`` for ``PIP_*`` variables; others are not read by
        ``pip install``).

    Returns
    -------
    flags : list of str
        ``--index-strategy unsafe-best-match`` and one flag per setting.
    env : dict of str to str
        ``SSL_CERT_FILE`` for pip's ``cert``.

    Raises
    ------
    ValueError
        A setting uv cannot take over (its key is named): the caller uses pip.
    """
    flags, env = ["--index-strategy", "unsafe-best-match"], {}
    seen = set()
    for full, value in sorted(conf.items(), key=lambda kv: not kv[0].startswith(":env:")):
        section, _, key = full.rpartition(".")
        if section not in ("global", "install", ":env:"):
            continue
        if key in seen:  # PIP_* variables first: they override the files, as in pip
            continue
        seen.add(key)
        if key == "cert":
            env["SSL_CERT_FILE"] = value
        elif key in IGNORED:
            continue
        elif key in UV_OPTIONS:
            if key == "no-index":
                if value.strip().lower() in ("1", "true", "yes", "on"):
                    flags.append("--no-index")
                continue
            for v in value.split():
                flags += [UV_OPTIONS[key], v]
        else:
            raise ValueError(f"pip setting {full}={value!r} has no uv equivalent here")
    return flags, env


def uv_args(pip_args: list[str]) -> list[str]:
    """``pip install`` arguments as ``uv pip install`` takes them.

    Parameters
    ----------
    pip_args : list of str
        Arguments of ``pip install``.

    Returns
    -------
    args : list of str
        The same arguments (those in ``_PASS``, and requirement specifiers).

    Raises
    ------
    ValueError
        An argument uv is not given here (the caller uses pip).
    """
    out, i = [], 0
    while i < len(pip_args):
        a = pip_args[i]
        if a in _PASS:
            out += pip_args[i:i + 1 + _PASS[a]]
            i += 1 + _PASS[a]
        elif a.startswith("-"):
            raise ValueError(f"pip argument {a!r} is not passed to uv")
        else:
            out.append(a)
            i += 1
    return out


def _run(cmd: list[str], env: dict | None = None) -> int:
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout.splitlines():
        if _NOISE not in line:
            print(line)
    return proc.returncode


def _uv(python: str) -> Path | None:
    """The venv's uv, installed with pip when missing (``None`` when that fails)."""
    uv = Path(python).parent / "uv"
    if not uv.exists() and _run([python, "-m", "pip", "install", "--quiet", "uv"]) != 0:
        return None
    return uv if uv.exists() else None


def install(python: str, pip_args: list[str], installer: str = "auto") -> str:
    """Install ``pip_args`` into ``python``'s environment; returns the installer used.

    Parameters
    ----------
    python : str
        The target interpreter (the venv's ``python``).
    pip_args : list of str
        ``pip install`` arguments.
    installer : {"auto", "uv", "pip"}, default="auto"
        ``auto``: uv where it can be installed and pip's configuration translated, pip
        otherwise or if uv fails; ``uv``: uv or an error; ``pip``: pip.

    Returns
    -------
    used : {"uv", "pip"}

    Raises
    ------
    RuntimeError
        The install failed (or ``installer="uv"`` and uv could not run).
    """
    if installer not in ("auto", "uv", "pip"):
        raise ValueError(f"installer must be 'auto', 'uv' or 'pip', got {installer!r}")
    if installer != "pip":
        why = None
        try:
            flags, extra = uv_flags(pip_config(python))
            args = uv_args(pip_args)
            uv = _uv(python)
            if uv is None:
                why = "uv could not be installed with pip"
        except (ValueError, subprocess.CalledProcessError, OSError) as exc:
            why = str(exc)
        if why is None:
            env = {**os.environ, **extra}
            code = _run([str(uv), "pip", "install", "--python", python, *flags, *args], env)
            if code == 0:
                return "uv"
            why = f"uv pip install exited with {code}"
        if installer == "uv":
            raise RuntimeError(f"uv: {why}")
        print(f"[install] pip instead of uv: {why}")
    code = _run([python, "-m", "pip", "install", "--no-compile", *pip_args])
    if code != 0:
        raise RuntimeError(f"pip install {shlex.join(pip_args)} exited with {code}")
    return "pip"


def main(argv=None) -> int:
    """Command line: ``install.py [--python PY] [--installer auto|uv|pip] -- PIP_ARGS``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        0 when installed, 1 when the install failed (the reason on stderr).
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="the venv's interpreter")
    ap.add_argument("--installer", default=os.environ.get("BRAINLLM_INSTALLER", "auto"),
                    choices=("auto", "uv", "pip"), help="default: $BRAINLLM_INSTALLER, else auto")
    ap.add_argument("pip_args", nargs=argparse.REMAINDER, help="-- then pip install arguments")
    ns = ap.parse_args(argv)
    args = ns.pip_args[1:] if ns.pip_args[:1] == ["--"] else ns.pip_args
    if not args:
        ap.error("no pip install arguments (give them after --)")
    try:
        install(ns.python, args, ns.installer)
    except (RuntimeError, ValueError) as exc:
        print(f"[install] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
