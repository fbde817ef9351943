"""The wheel installs everything under one import name, ``detstream``, and nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

import detstream
from tests.conftest import REPO

FOLDERS = {"engines": "detstream.engines", "stream": "detstream.stream", "demo": "detstream.demo"}


def _source_packages() -> set[str]:
    packages = {"detstream"}
    for folder, name in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            packages.add(".".join([name, *relative.parts]))
    return packages


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == _source_packages()
    for folder, name in FOLDERS.items():
        assert config["package-dir"][name] == folder


def test_public_api_names_resolve():
    assert detstream.__version__
    for name in detstream.__all__:
        assert getattr(detstream, name) is not None, name
    assert detstream.Detections.__module__ == "detstream.engines.spec"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        detstream.nonexistent  # noqa: B018


def test_import_detstream_does_not_import_torch():
    code = "import sys, detstream; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.timeout(300)
def test_wheel_holds_only_detstream(tmp_path: Path):
    # Build from a copy: an in-tree build would write build/ into the repository, and stale
    # files there can end up in a wheel. Build isolation fetches setuptools from the package
    # index, as any install of ours does.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("detstream", *FOLDERS):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(tmp_path), str(source)],
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("detstream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"detstream"}
    assert "detstream/engines/weights/default.safetensors" in names
    assert "detstream/demo/static/detstream.js" in names
    assert "detstream/stream/cli.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "detstream = detstream.stream.cli:main" in text


def test_a_source_checkout_imports_without_installing(tmp_path: Path):
    """``PYTHONPATH=. python3 scripts/gpu_check.py`` on a machine with only the repository."""
    for name in ("pyproject.toml",):
        shutil.copy2(REPO / name, tmp_path / name)
    for folder in ("detstream", *FOLDERS):
        shutil.copytree(REPO / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import detstream, detstream.engines.boxes as boxes, detstream.stream.bench.common; "
            "print(boxes.__file__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd="/", env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "engines" / "boxes.py")
