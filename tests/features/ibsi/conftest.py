"""Fixtures of the IBSI-mode feature tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def phantom(ibsi_dir):
    """IBSI digital phantom from ``../shared/ibsi``: (z, y, x) grey levels 1..6 (int64) and mask
    (bool).
    """
    sitk = pytest.importorskip("SimpleITK")
    folder = ibsi_dir / "ibsi1" / "digital_phantom"
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "image.nii.gz")))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask.nii.gz"))).astype(bool)
    assert image.shape == (4, 4, 5) and mask.sum() == 74
    return image.astype(np.int64), mask
