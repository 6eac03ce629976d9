"""The environment installer (brainllm_utils/book/install.py): pip's configuration and
arguments translated for uv, refusals that send the install to pip, and a real install of a
small local package into a fresh venv with each installer."""

from __future__ import annotations

import subprocess
import sys
import venv

import pytest

from brainllm_utils.book import install as inst
from brainllm_utils.paths import REPO_ROOT


def test_uv_flags_translate_every_setting():
    conf = {
        "global.find-links": "/opt/wheels",
        "global.extra-index-url": "file:///a/simple file:///b/simple",
        "global.constraint": "/etc/c.txt",
        "global.cert": "/etc/ssl/ca.crt",
        "global.disable-pip-version-check": "1",
        "install.trusted-host": "h1 h2",
        "global.index-url": "https://files.example/simple",
        "user.index-url": "https://not-read/simple",  # a section pip install does not read
    }
    flags, env = inst.uv_flags(conf)
    assert flags[:2] == ["--index-strategy", "unsafe-best-match"]
    pairs = list(zip(flags[2::2], flags[3::2]))
    assert ("--find-links", "/opt/wheels") in pairs
    assert ("--extra-index-url", "file:///a/simple") in pairs
    assert ("--extra-index-url", "file:///b/simple") in pairs
    assert ("--constraint", "/etc/c.txt") in pairs
    assert ("--allow-insecure-host", "h1") in pairs and ("--allow-insecure-host", "h2") in pairs
    assert ("--index-url", "https://files.example/simple") in pairs
    assert "https://not-read/simple" not in flags
    assert env == {"SSL_CERT_FILE": "/etc/ssl/ca.crt"}


def test_environment_variables_override_the_files_as_in_pip():
    flags, _ = inst.uv_flags({"global.index-url": "https://file/simple",
                              ":env:.index-url": "https://env/simple"})
    assert flags[2:] == ["--index-url", "https://env/simple"]
    assert inst.uv_flags({":env:.no-index": "1"})[0][2:] == ["--no-index"]
    assert inst.uv_flags({":env:.no-index": "false"})[0][2:] == []


def test_a_setting_uv_cannot_take_sends_the_install_to_pip():
    with pytest.raises(ValueError, match="global.prefer-binary"):
        inst.uv_flags({"global.prefer-binary": "1"})
    with pytest.raises(ValueError, match="--user"):
        inst.uv_args(["--user", "-r", "requirements.txt"])


def test_uv_args_keep_the_makefiles_arguments():
    args = ["--quiet", "--no-deps", "--no-build-isolation", "-r", "a.txt", "-r", "b.txt", "-e", "."]
    assert inst.uv_args(args) == args
    assert inst.uv_args(["numpy==2.0", "-c", "c.txt"]) == ["numpy==2.0", "-c", "c.txt"]


def test_the_pip_configuration_here_translates():
    """This machine's (and CI's) pip configuration is one uv takes over."""
    conf = inst.pip_config(sys.executable)
    flags, _ = inst.uv_flags(conf)
    for key, value in conf.items():
        name = key.rpartition(".")[2]
        if name in ("find-links", "extra-index-url", "index-url", "constraint"):
            assert all(v in flags for v in value.split()), key


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="installer must be"):
        inst.install(sys.executable, ["x"], installer="conda")
    with pytest.raises(SystemExit):
        inst.main(["--python", sys.executable, "--"])


def test_makefile_installs_through_this_script():
    make = (REPO_ROOT / "Makefile").read_text()
    assert "brainllm_utils/book/install.py" in make
    assert "pip install --quiet -r requirements.txt" not in make


def _wheel(folder):
    """A one-module wheel built by hand (no build backend, no index)."""
    import base64
    import hashlib
    import zipfile

    files = {
        "tinypkg_brainllm/__init__.py": b"VALUE = 42\n",
        "tinypkg_brainllm-0.1.dist-info/METADATA":
            b"Metadata-Version: 2.1\nName: tinypkg-brainllm\nVersion: 0.1\n",
        "tinypkg_brainllm-0.1.dist-info/WHEEL":
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256="
              + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
              + f",{len(data)}" for name, data in files.items()]
    files["tinypkg_brainllm-0.1.dist-info/RECORD"] = (
        "\n".join([*record, "tinypkg_brainllm-0.1.dist-info/RECORD,,"]) + "\n").encode()
    path = folder / "tinypkg_brainllm-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_fresh_venv_gets_a_local_wheel(tmp_path, installer):
    """Offline: the wheel is local and --no-deps; uv is the one beside this interpreter
    (make install puts it in the venv), so nothing is downloaded."""
    from pathlib import Path

    uv = Path(sys.executable).parent / "uv"
    if installer == "uv" and not uv.exists():
        pytest.skip("no uv beside this interpreter (a venv made before make installed uv)")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    if installer == "uv":
        (env_dir / "bin" / "uv").symlink_to(uv)
    script = REPO_ROOT / "brainllm_utils" / "book" / "install.py"
    out = subprocess.run([py, "-I", str(script), "--python", py, "--installer", installer, "--",
                          "--quiet", "--no-deps", str(_wheel(tmp_path))],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "instead of uv" not in out.stdout
    got = subprocess.run([py, "-c", "import tinypkg_brainllm as t; print(t.VALUE)"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert got.stdout.strip() == "42", got.stderr


def test_a_failing_uv_falls_back_to_pip_and_says_why(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    fake = env_dir / "bin" / "uv"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    script = REPO_ROOT / "brainllm_utils" / "book" / "install.py"
    out = subprocess.run([py, "-I", str(script), "--python", py, "--",
                          "--quiet", "--no-deps", str(_wheel(tmp_path))],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pip instead of uv: uv pip install exited with 3" in out.stdout
    got = subprocess.run([py, "-c", "import tinypkg_brainllm as t; print(t.VALUE)"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert got.stdout.strip() == "42", got.stderr
    # installer="uv" does not fall back
    out = subprocess.run([py, "-I", str(script), "--python", py, "--installer", "uv", "--",
                          "--no-deps", str(_wheel(tmp_path))], capture_output=True, text=True)
    assert out.returncode == 1 and "uv: uv pip install exited with 3" in out.stderr
