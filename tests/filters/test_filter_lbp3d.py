"""The icosphere and spherical harmonics behind LBP 3D, against geometry and closed forms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _filter_images import old_scipy_sph_harm
from scipy.spatial import ConvexHull

from radflow.filters.lbp import _harmonics, icosphere_vertices

GOLDEN = (1 + 5**0.5) / 2


def as_set(points: np.ndarray) -> set:
    return {tuple(p) for p in np.round(points, 12) + 0.0}


def icosahedron(radius: float) -> np.ndarray:
    """Cyclic permutations of (0, +-1, +-golden ratio), on the sphere of `radius`."""
    base = [(0.0, a, b * GOLDEN) for a, b in itertools.product((-1, 1), repeat=2)]
    points = np.array([p[k:] + p[:k] for p in base for k in range(3)])
    return radius * points / np.linalg.norm(points, axis=1, keepdims=True)


def refined(points: np.ndarray, radius: float) -> np.ndarray:
    """`points` plus the midpoint of every edge pushed to the sphere.

    The mesh of points on a sphere is their convex hull, so its edges are
    found without the faces the code under test builds.
    """
    triangles = ConvexHull(points).simplices
    edges = {tuple(sorted(pair)) for t in triangles for pair in itertools.combinations(t, 2)}
    i, j = np.array(sorted(edges)).T
    middle = points[i] + points[j]
    return np.vstack([points, radius * middle / np.linalg.norm(middle, axis=1, keepdims=True)])


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_icosphere_is_the_subdivided_icosahedron(radius):
    expected = icosahedron(radius)
    for subdivision, count in enumerate((12, 42, 162)):
        vertices = icosphere_vertices(subdivision, radius)
        assert vertices.shape == (count, 3)
        np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), radius, rtol=1e-15)
        assert as_set(vertices) == as_set(expected)
        expected = refined(expected, radius)


def test_reference_sph_harm_closed_forms():
    # The shim standing in for SciPy < 1.17's sph_harm(m, n, azimuth, polar) in the parity tests.
    polar, azimuth = np.linspace(0.1, 3.0, 7), np.linspace(-3.0, 3.0, 7)
    np.testing.assert_allclose(old_scipy_sph_harm(0, 0, azimuth, polar), 0.5 / np.sqrt(np.pi))
    np.testing.assert_allclose(
        old_scipy_sph_harm(0, 1, azimuth, polar), np.sqrt(3 / (4 * np.pi)) * np.cos(polar)
    )
    y11 = -np.sqrt(3 / (8 * np.pi)) * np.sin(polar) * np.exp(1j * azimuth)
    np.testing.assert_allclose(old_scipy_sph_harm(1, 1, azimuth, polar), y11)
    np.testing.assert_allclose(old_scipy_sph_harm(-1, 1, azimuth, polar), -np.conj(y11))
    y2m2 = np.sqrt(15 / (32 * np.pi)) * np.sin(polar) ** 2 * np.exp(-2j * azimuth)
    np.testing.assert_allclose(old_scipy_sph_harm(-2, 2, azimuth, polar), y2m2)


def test_harmonics_keep_pyradiomics_swapped_angles():
    radius = 2.0
    vertices = icosphere_vertices(1, radius)
    table, degrees = _harmonics(vertices, radius, levels=3)
    assert table.shape == (42, 9) and degrees.tolist() == [0, 1, 1, 1, 2, 2, 2, 2, 2]
    polar = np.arccos(vertices[:, 2] / radius)
    azimuth = np.arctan2(vertices[:, 1], vertices[:, 0])
    # PyRadiomics: sph_harm(m, n, polar, azimuth), SciPy's argument order being (azimuth, polar)
    expected = [
        old_scipy_sph_harm(m, n, polar, azimuth) for n in range(3) for m in range(-n, n + 1)
    ]
    np.testing.assert_allclose(table, np.column_stack(expected), rtol=1e-13, atol=1e-15)
