"""The IBSI CT phantom read from DICOM agrees with its NIfTI version.

The NIfTI files are read with nibabel (RAS world coordinates), independently
of SimpleITK; both grids are mapped to LPS patient coordinates and the voxel
correspondence is derived from the two affines, so an axis flip in either
file is accounted for rather than assumed away.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.io.dicom import read_image_series
from radflow.io.rtstruct import read_rtstruct

nib = pytest.importorskip("nibabel")

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def phantom(ibsi_dir):
    root = ibsi_dir / "ibsi1" / "ct_phantom"
    image = read_image_series(sorted((root / "dicom" / "image").glob("*.dcm")))
    labels, errors = read_rtstruct(root / "dicom" / "rtstruct" / "DCM_RS_00060.dcm", image)
    return root, image, labels, errors


def _lps_affine(image: sitk.Image) -> np.ndarray:
    """4x4 affine of a SimpleITK image: (x, y, z) index -> LPS mm."""
    affine = np.eye(4)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    affine[:3, :3] = direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return affine


def _nifti_on_dicom_grid(path, image: sitk.Image) -> np.ndarray:
    """NIfTI voxels in the (z, y, x) array order of ``image``, via both affines."""
    nifti = nib.load(path)
    lps_from_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    # index_dicom = inv(A_dicom) @ A_nifti(LPS) @ index_nifti: must be a signed
    # permutation with an integer offset for the grids to coincide.
    mapping = np.linalg.inv(_lps_affine(image)) @ lps_from_ras @ nifti.affine
    rounded = np.round(mapping)
    assert np.allclose(mapping, rounded, atol=1e-3), f"grids differ: {mapping}"
    rotation, offset = rounded[:3, :3], rounded[:3, 3]
    data = np.asarray(nifti.dataobj)
    size_xyz = np.array(image.GetSize())
    index_dicom = np.indices(size_xyz[::-1]).reshape(3, -1)[::-1]  # rows x, y, z
    index_nifti = (np.linalg.inv(rotation) @ (index_dicom - offset[:, None])).round().astype(int)
    assert (index_nifti >= 0).all() and (index_nifti.T < data.shape).all()
    return data[tuple(index_nifti)].reshape(tuple(size_xyz[::-1]))


def test_dicom_hu_equal_nifti_hu(phantom):
    root, image, _, _ = phantom
    assert image.GetPixelID() == sitk.sitkInt16
    assert image.GetSize() == (204, 201, 60)
    assert image.GetSpacing() == pytest.approx((0.977, 0.977, 3.0), abs=1e-6)
    hu_nifti = _nifti_on_dicom_grid(root / "nifti" / "image.nii.gz", image)
    hu_dicom = sitk.GetArrayFromImage(image)
    assert hu_dicom.min() >= -1024 and hu_dicom.max() <= 3071  # 12-bit stored, intercept -1000
    assert np.array_equal(hu_dicom, hu_nifti), (
        f"max |difference| {np.abs(hu_dicom - hu_nifti).max()} HU"
    )


def test_rtstruct_roi_matches_the_nifti_mask(phantom):
    root, image, labels, errors = phantom
    assert errors == []
    assert [(label.key, label.rois) for label in labels] == [("gtv_1", {1: "GTV-1"})]
    roi = sitk.GetArrayFromImage(labels[0].image).astype(bool)
    reference = _nifti_on_dicom_grid(root / "nifti" / "mask.nii.gz", image) > 0
    assert reference.sum() == 125_256  # as documented in the IBSI README
    dice = 2 * (roi & reference).sum() / (roi.sum() + reference.sum())
    assert dice >= 0.98, f"Dice {dice:.4f} (rasterised {roi.sum()}, NIfTI {reference.sum()} voxels)"
    # Recorded result: the rasteriser reproduces the mask voxel for voxel (Dice 1.0).
    assert np.array_equal(roi, reference), f"Dice {dice:.6f}, not voxel-exact"
