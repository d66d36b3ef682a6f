"""The kernels compiled ahead of time (``radflow.features._aot``) against their numba twins.

Both are compiled from the same source functions: every feature of full PyRadiomics-mode and
IBSI-mode extractions must be bit for bit the same whichever build serves the kernels. The
installation the tests run in (``make test``) must have built the extension, and a command
extracting PyRadiomics' default classes must then not import numba at all.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.extraction.extractor import extract
from radflow.extraction.ibsi import extract_ibsi
from radflow.features import _aot_spec, _native

_NAMES = [name for kernels in _aot_spec.KERNELS.values() for name in kernels]


def test_the_extension_is_built_and_current():
    assert _native.BUILD == "aot", (
        "radflow.features._aot was not built or is stale: reinstall (pip install -e .) and "
        "read its build output (setup.py compiles it with numba.pycc)"
    )
    for name in _NAMES:
        assert not hasattr(getattr(_native, name), "py_func"), f"{name} is numba's JIT twin"


def _swap_to_jit(monkeypatch):
    """Every compiled kernel, wherever a loaded radflow module holds it, swapped for its twin.

    Found by identity in the modules the compiled runs imported, so a module that binds a
    kernel by name cannot keep its compiled one unnoticed.
    """
    twins = _native._jit_kernels()
    compiled = {id(getattr(_native, name)): name for name in _NAMES}
    swapped = set()
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("radflow.features"):
            for attr, value in list(vars(module).items()):
                if id(value) in compiled:
                    monkeypatch.setattr(module, attr, twins[compiled[id(value)]])
                    swapped.add(module_name)
    assert "radflow.features._native" in swapped and len(swapped) > 1, swapped


def _cases():
    rng = np.random.default_rng(7)
    values = rng.normal(40, 30, size=(9, 21, 23)).round().astype(np.int16)
    blob = np.zeros(values.shape, np.uint8)
    z, y, x = np.ogrid[:9, :21, :23]
    blob[((z - 4) / 3.5) ** 2 + ((y - 10) / 7.5) ** 2 + ((x - 11) / 8.0) ** 2 <= 1] = 1
    blob[4, 10, 11] = 0  # a hole
    border = np.zeros(values.shape, np.uint8)
    border[0:3, 0:6, 15:23] = 1  # touching three faces of the image
    flat = np.zeros(values.shape, np.uint8)
    flat[4, 3:15, 2:20] = 1
    flat[4, 8, 5:9] = 0
    for mask, force_2d in ((blob, False), (border, False), (flat, True)):
        image = sitk.GetImageFromArray(values)
        image.SetSpacing((0.8, 0.7, 2.5))
        label = sitk.GetImageFromArray(mask)
        label.CopyInformation(image)
        yield image, label, force_2d


def _same(a: dict, b: dict) -> list[str]:
    """Keys whose values differ (NaN equals NaN), the diagnostics' timings left out."""
    assert a.keys() == b.keys()
    differ = []
    for key, value in a.items():
        if "diagnostics_" in key:
            continue
        other = b[key]
        if isinstance(value, float) and math.isnan(value):
            if not (isinstance(other, float) and math.isnan(other)):
                differ.append(key)
        elif not np.array_equal(value, other):
            differ.append(key)
    return differ


def _all_classes(force_2d: bool) -> dict:
    classes = {name: None for name in ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")}
    classes["shape2D" if force_2d else "shape"] = None
    setting = {"binWidth": 10, "force2D": force_2d, "distances": [1, 2]}
    return {"featureClass": classes, "setting": setting}


def test_pyradiomics_mode_bit_for_bit(monkeypatch):
    compiled = [extract(image, mask, _all_classes(force_2d)) for image, mask, force_2d in _cases()]
    _swap_to_jit(monkeypatch)
    for (image, mask, force_2d), expected in zip(_cases(), compiled, strict=True):
        assert _same(extract(image, mask, _all_classes(force_2d)), expected) == []


@pytest.mark.parametrize("config", ["A", "D"])
def test_ibsi_mode_bit_for_bit(monkeypatch, config):
    image, mask, _ = next(_cases())
    compiled = extract_ibsi(image, mask, config)
    _swap_to_jit(monkeypatch)
    assert _same(extract_ibsi(image, mask, config), compiled) == []


def test_a_stale_extension_is_not_used(monkeypatch, caplog):
    """Kernel sources edited after the build: the JIT twins serve, with a warning."""
    monkeypatch.setattr(_aot_spec, "source_digest", lambda folder: -1)
    with caplog.at_level(logging.WARNING, logger="radflow.features._native"):
        stale = importlib.reload(_native)
    try:
        assert stale.BUILD == "jit"
        assert hasattr(stale.count_pairs, "py_func")
        assert "compiled from other kernel sources" in caplog.text
    finally:
        monkeypatch.undo()
        importlib.reload(_native)
    assert _native.BUILD == "aot"


def test_default_extraction_command_imports_no_numba(tmp_path):
    """``radflow extract IMAGE MASK`` with PyRadiomics' default classes: no numba in the process."""
    image, mask, _ = next(_cases())
    paths = [tmp_path / "image.nrrd", tmp_path / "mask.nrrd"]
    for img, path in zip((image, mask), paths, strict=True):
        sitk.WriteImage(img, str(path))
    out = tmp_path / "features.json"
    code = (
        "import sys\n"
        "from radflow.cli import main\n"
        f"code = main(['extract', {str(paths[0])!r}, {str(paths[1])!r}, '--format', 'json',"
        f" '-o', {str(out)!r}])\n"
        "print('numba' in sys.modules, code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["False", "0"], done.stderr
    features = json.loads(out.read_text())
    assert "original_shape_MeshVolume" in features and "original_ngtdm_Busyness" in features
