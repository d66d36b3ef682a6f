"""Small test volumes and PyRadiomics shims shared by the filter tests."""

from __future__ import annotations

import sys
import types

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, special


def ct_like(shape=(24, 40, 40), spacing_xyz=(0.8, 0.7, 2.5), seed=0) -> sitk.Image:
    """int16 CT-like volume: smoothed noise around -200 HU plus air and bone plateaus."""
    rng = np.random.default_rng(seed)
    values = ndimage.gaussian_filter(rng.normal(0.0, 300.0, shape), 1.0) * 4 - 200
    values[:, :, : shape[2] // 8] = -1000 + rng.normal(0, 20, (shape[0], shape[1], shape[2] // 8))
    values[:, -shape[1] // 10 :, :] += 1200
    image = sitk.GetImageFromArray(np.clip(values, -1024, 3000).astype(np.int16))
    image.SetSpacing(spacing_xyz)
    image.SetOrigin((-10.0, 5.0, 30.0))
    return image


def pet_like(shape=(23, 39, 41), spacing_xyz=(2.0, 2.0, 3.0), seed=1) -> sitk.Image:
    """float32 PET-like volume (SUV >= 0) with odd sizes, a hot spot and a cold background."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    spot = 8.0 * np.exp(-((z - 11) ** 2 / 20 + (y - 19) ** 2 / 40 + (x - 20) ** 2 / 30))
    values = spot + np.abs(ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), 1.2)) + 0.3
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing(spacing_xyz)
    return image


def box_mask(image: sitk.Image, box_zyx, label: int = 1) -> sitk.Image:
    array = np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=np.uint8)
    array[box_zyx] = label
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(image)
    return mask


def old_scipy_sph_harm(m, n, azimuth, polar):
    """``scipy.special.sph_harm`` as SciPy < 1.17 defined it, from the associated Legendre function.

    Y_n^m = sqrt((2n+1)/(4 pi) (n-m)!/(n+m)!) P_n^m(cos polar) exp(i m azimuth),
    P_n^m with the Condon-Shortley phase (``lpmv``); negative m through
    P_n^{-m} = (-1)^m (n-m)!/(n+m)! P_n^m.
    """
    mp = abs(m)
    legendre = special.lpmv(mp, n, np.cos(polar))
    if m < 0:
        legendre = legendre * (-1) ** mp * special.poch(n + mp + 1, -2 * mp)
    norm = np.sqrt((2 * n + 1) / (4 * np.pi) * special.poch(n + m + 1, -2 * m))
    return norm * legendre * np.exp(1j * m * np.asarray(azimuth))


def install_lbp3d_shims(monkeypatch) -> None:
    """Let PyRadiomics' getLBP3DImage run here: trimesh is not installed and SciPy 1.17 dropped
    sph_harm.

    The icosphere comes from radflow (tested on its own against the
    icosahedron's geometry in test_filter_lbp3d.py); sph_harm is the
    independent Legendre-based definition above.
    """
    from radflow.filters.lbp import icosphere_vertices

    creation = types.ModuleType("trimesh.creation")
    creation.icosphere = lambda subdivisions, radius: types.SimpleNamespace(
        vertices=icosphere_vertices(subdivisions, radius)
    )
    trimesh = types.ModuleType("trimesh")
    trimesh.creation = creation
    monkeypatch.setitem(sys.modules, "trimesh", trimesh)
    monkeypatch.setitem(sys.modules, "trimesh.creation", creation)
    monkeypatch.setattr(special, "sph_harm", old_scipy_sph_harm, raising=False)


def pyradiomics_images(image, mask, image_type: str, settings: dict) -> dict[str, np.ndarray]:
    """{name: array} from PyRadiomics' own generator ``imageoperations.get<Type>Image``."""
    from radiomics import imageoperations

    generator = getattr(imageoperations, f"get{image_type}Image")
    return {
        name: sitk.GetArrayFromImage(out) for out, name, _ in generator(image, mask, **settings)
    }
