"""PyRadiomics 3.0.1 voxel-mode maps beside radflow's class-level maps (GLSZM, GLDM, NGTDM tests).

:func:`compare` runs ``RadiomicsFeatureExtractor.execute(image, mask, voxelBased=True)`` for one
class, rebuilds the inputs of ``compute_maps`` the way PyRadiomics builds them (its crop: the
ROI box padded by ``kernelRadius`` and clipped to the image, read back from the maps' origin;
discretisation over the ROI when masked, over the whole crop when not, in the image's own
dtype as PyRadiomics' texture classes do, with
:func:`radflow.preprocess.discretise.discretise`) and checks every ROI voxel of every map
(rtol 1e-6, NaN where PyRadiomics has NaN).
"""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest
import SimpleITK as sitk
import volumes  # tests/features/volumes.py

from radflow.params.extraction import Settings
from radflow.preprocess.discretise import discretise

#: (image type, settings) cases shared by the three classes: CT, PET and MR, binWidth and
#: binCount, kernelRadius 1-3, masked and unmasked, force2D, a ROI at the image border.
CASES = {
    "ct_r1_masked": ("ct", {"kernelRadius": 1, "binWidth": 25}),
    "ct_r2_unmasked": ("ct", {"kernelRadius": 2, "maskedKernel": False, "binWidth": 25}),
    "pet_r1_force2d": ("pet", {"kernelRadius": 1, "binWidth": 0.5, "force2D": True}),
    "pet_r2_bincount": ("pet", {"kernelRadius": 2, "binCount": 16}),
    "mr_r1_unmasked_bincount": ("mr", {"kernelRadius": 1, "binCount": 24, "maskedKernel": False}),
    "mr_r3_masked": ("mr", {"kernelRadius": 3, "binCount": 24}),
    "border_r2_masked": ("border", {"kernelRadius": 2, "binWidth": 0.5}),
    "border_r1_unmasked_force2d_y": (
        "border",
        {
            "kernelRadius": 1,
            "binWidth": 0.5,
            "maskedKernel": False,
            "force2D": True,
            "force2Ddimension": 1,
        },
    ),  # fmt: skip
}


def volume(name):
    """(image, mask) SimpleITK pair; ``border``: the PET case cut so its ROI touches 3 faces."""
    if name != "border":
        return getattr(volumes, name)()
    image, mask = volumes.pet()
    z, y, x = np.nonzero(sitk.GetArrayFromImage(mask) == 1)
    cut = (slice(int(x.min()), None), slice(None, int(y.max()) + 1), slice(int(z.min()), None))
    return image[cut], mask[cut]


def compare(family: str, image, mask, settings: dict, features=None):
    """Check radflow's ``compute_maps`` of ``family`` against PyRadiomics' voxel maps.

    Returns the number of ROI voxels compared.
    """
    featureextractor = pytest.importorskip("radiomics.featureextractor")
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(**settings)
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(**{family: list(features or [])})
    result = extractor.execute(image, mask, voxelBased=True)
    maps = {
        key.split("_", 2)[2]: sitk.GetArrayFromImage(value)
        for key, value in result.items()
        if key.startswith(f"original_{family}_")
    }
    reference = result[f"original_{family}_{next(iter(maps))}"]
    start = image.TransformPhysicalPointToIndex(reference.GetOrigin())[::-1]
    box = tuple(slice(s, s + n) for s, n in zip(start, reference.GetSize()[::-1]))
    native = sitk.GetArrayFromImage(image)[box]  # PyRadiomics' texture classes bin this dtype
    roi = sitk.GetArrayFromImage(mask)[box] == 1
    masked = settings.get("maskedKernel", True)
    region = roi if masked else np.ones_like(roi)
    binned, _ = discretise(
        native,
        region,
        bin_width=None if "binCount" in settings else settings.get("binWidth", 25),
        bin_count=settings.get("binCount"),
    )
    centres = np.argwhere(roi)
    ours = importlib.import_module(f"radflow.features.voxel.{family}").compute_maps(
        native.astype(np.float64),
        binned,
        region,
        centres,
        n_levels=int(binned[region].max()),
        kernel_radius=settings["kernelRadius"],
        settings=Settings(
            distances=tuple(settings.get("distances", (1,))),
            gldm_a=settings.get("gldm_a", 0),
            force_2d=settings.get("force2D", False),
            force_2d_dimension=settings.get("force2Ddimension", 0),
        ),
        spacing_zyx=image.GetSpacing()[::-1],
        features=list(maps),
    )
    assert sorted(ours) == sorted(maps)
    for name, expected in maps.items():
        np.testing.assert_allclose(
            ours[name], expected[tuple(centres.T)], rtol=1e-6, atol=1e-12, err_msg=name
        )
    return len(centres)
