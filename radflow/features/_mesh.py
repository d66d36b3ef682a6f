"""Marching-cubes / marching-squares kernels behind the shape and shape2D families.

The mesh is PyRadiomics' (``radiomics/src/cshape.c``, version 3.0.1), so that
every mesh-based feature matches it: the mask is zero-padded by one voxel,
vertices sit at the midpoints of edges joining an ROI voxel to a background
voxel (no interpolation), triangles come from the classic Lorensen & Cline
table in the half-size form below (cube indices >= 128 are complemented and
the sign of their volume flipped), the volume is the sum of signed
tetrahedra (origin, triangle) and the diameters are the largest distances
between mesh vertices.

Coordinates in every kernel are in (z, y, x) order. Vertices are handled as
integers on the doubled voxel grid (``2 * index`` for voxel centres,
``2 * index + 1`` for edge midpoints); their position in mm is
``(0.5 * doubled) * spacing``, the same floating-point value PyRadiomics
computes as ``(index + 0.5) * spacing``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["edge_vertices", "mesh_area_volume", "mesh_diameters", "contour_perimeter_area"]

#: Corners of a marching cube, (dz, dy, dx) from its origin; bit k of the cube
#: index is corner k.
_CUBE_CORNERS = np.array(
    [[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 0, 0], [1, 0, 1], [1, 1, 1], [1, 1, 0]],
    dtype=np.int64,
)

#: Midpoint of each of the 12 cube edges, (dz, dy, dx) from the cube origin.
_CUBE_EDGE_MIDPOINTS = np.array(
    [
        [0, 0, 0.5], [0, 0.5, 1], [0, 1, 0.5], [0, 0.5, 0],
        [1, 0, 0.5], [1, 0.5, 1], [1, 1, 0.5], [1, 0.5, 0],
        [0.5, 0, 0], [0.5, 0, 1], [0.5, 1, 1], [0.5, 1, 0],
    ]
)  # fmt: skip

# Triangles of cube indices 0..127 as hexadecimal edge numbers, three per
# triangle, oriented so that normals point out of the ROI. This is the public
# domain table of P. Bourke's "Polygonising a scalar field" in the half-size
# form and triangle order of PyRadiomics 3.0.1 (BSD-3-Clause): the surface
# area of ambiguous cubes depends on the triangulation, so it must be this one.
_TRIANGLE_ROWS = (
    "", "083", "190", "183198", "12a", "08312a", "92a029", "2832a8a98",
    "b23", "b2008b", "190b23", "b2119b98b", "3a1ba3", "a1008a8ba", "9033b9ba9", "98aba8",
    "478", "043473", "190478", "194147173", "12a478", "34730412a", "92a902478", "2a9297273479",
    "478b23", "b47b24204", "190478b23", "47b94bb29192", "3a1ba3478", "ba114b10447b", "4789033b9ba9", "47b4b99ba",
    "954", "954083", "054015", "854835315", "12a954", "08312a954", "2a5542240", "2a5325354834",
    "954b23", "b2008b954", "054015b23", "215258b28548", "3a1ba3954", "549a1008a8ba", "54050ba5bb03", "548a58ba8",
    "789579", "309539357", "780017715", "157173", "78957912a", "12a309395357", "0288258572a5", "2a5253357",
    "579789b23", "579972209b27", "b23018178157", "21b17b157", "7895793a1ba3", "5705097b0a10ba0", "ba003ba50078570", "ba557b",
    "65a", "08365a", "19065a", "18319865a", "165126", "165126083", "965906026", "598582526832",
    "b2365a", "b2008b65a", "190b2365a", "b2119b98b65a", "63b653513", "08b0b50515b6", "63b036065059", "65969bb98",
    "47865a", "04347365a", "19047865a", "19414717365a", "478165126", "043473165126", "478965906026", "739479329596269",
    "b2347865a", "b47b2420465a", "190b2347865a", "47b94bb2919265a", "47863b653513", "51b5b610b47b04b", "47863b036065059", "65969b4797b9",
    "a4964a", "a4964a083", "01aa60640", "18316886461a", "149124264", "149124264083", "024426", "832824426",
    "b23a4964a", "b2008ba4964a", "b2301aa60640", "64161a148b2118b", "964369139b63", "18b081b61149641", "63b036640", "86468b",
    "67a78a89a", "67a0a709a073", "67a1a7178018", "67a1a7173", "126168189678", "269129679309739", "078706602", "273267",
    "b2367a78a89a", "207b2709767a9a7", "67a1a7178018b23", "b2117ba61167", "896678169b63136", "09167b", "07870603bb60", "67b",
)  # fmt: skip


def _triangle_table() -> np.ndarray:
    table = np.full((128, 15), -1, dtype=np.int64)
    for index, row in enumerate(_TRIANGLE_ROWS):
        table[index, : len(row)] = [int(edge, 16) for edge in row]
    return table


#: (128, 15) edge numbers of each cube's triangles, -1 after the last one.
_CUBE_TRIANGLES = _triangle_table()

#: Corners of a marching square, (dy, dx) from its origin.
_SQUARE_CORNERS = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], dtype=np.int64)
#: Midpoint of each of the 4 square edges, (dy, dx) from the square origin.
_SQUARE_EDGE_MIDPOINTS = np.array([[0, 0.5], [0.5, 1], [1, 0.5], [0.5, 0]])
#: Line segments (pairs of edge numbers) of each square index, -1 after the last.
_SQUARE_LINES = np.array(
    [
        [-1, -1, -1, -1], [3, 0, -1, -1], [0, 1, -1, -1], [3, 1, -1, -1],
        [1, 2, -1, -1], [1, 2, 3, 0], [0, 2, -1, -1], [3, 2, -1, -1],
        [2, 3, -1, -1], [2, 0, -1, -1], [0, 1, 2, 3], [2, 1, -1, -1],
        [1, 3, -1, -1], [1, 0, -1, -1], [0, 3, -1, -1], [-1, -1, -1, -1],
    ],
    dtype=np.int64,
)  # fmt: skip


@numba.njit(cache=True)
def mesh_area_volume(mask, spacing):
    """Surface area (mm^2) and signed-tetrahedra volume (mm^3) of the mesh.

    ``mask``: uint8 (z, y, x), 1 inside the ROI, with an empty border layer.
    ``spacing``: float64 (3,), mm, (z, y, x).
    """
    nz, ny, nx = mask.shape
    area = 0.0
    volume = 0.0
    a = np.empty(3)
    b = np.empty(3)
    c = np.empty(3)
    for iz in range(nz - 1):
        for iy in range(ny - 1):
            for ix in range(nx - 1):
                index = 0
                for k in range(8):
                    if mask[
                        iz + _CUBE_CORNERS[k, 0], iy + _CUBE_CORNERS[k, 1], ix + _CUBE_CORNERS[k, 2]
                    ]:
                        index |= 1 << k
                sign = 1.0
                if index & 0x80:
                    index ^= 0xFF
                    sign = -1.0
                if index == 0:
                    continue
                t = 0
                while t < 15 and _CUBE_TRIANGLES[index, t] >= 0:
                    origin = (iz, iy, ix)
                    for d in range(3):
                        a[d] = (origin[d] + _CUBE_EDGE_MIDPOINTS[_CUBE_TRIANGLES[index, t], d]) * spacing[d]
                        b[d] = (origin[d] + _CUBE_EDGE_MIDPOINTS[_CUBE_TRIANGLES[index, t + 1], d]) * spacing[d]
                        c[d] = (origin[d] + _CUBE_EDGE_MIDPOINTS[_CUBE_TRIANGLES[index, t + 2], d]) * spacing[d]
                    # 6 x signed volume of the tetrahedron (origin, a, b, c): (a x b) . c
                    volume += sign * (
                        (a[1] * b[2] - b[1] * a[2]) * c[0]
                        + (a[2] * b[0] - b[2] * a[0]) * c[1]
                        + (a[0] * b[1] - b[0] * a[1]) * c[2]
                    )
                    for d in range(3):
                        a[d] -= c[d]
                        b[d] -= c[d]
                    n0 = a[1] * b[2] - b[1] * a[2]
                    n1 = a[2] * b[0] - b[2] * a[0]
                    n2 = a[0] * b[1] - b[0] * a[1]
                    area += 0.5 * np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
                    t += 3
    return area, volume / 6.0


@numba.njit(cache=True)
def contour_perimeter_area(mask, spacing):
    """Perimeter (mm) and enclosed signed area (mm^2) of the marching-squares contour.

    ``mask``: uint8 (rows, columns), 1 inside the ROI, with an empty border.
    ``spacing``: float64 (2,), mm, (rows, columns).
    """
    ny, nx = mask.shape
    perimeter = 0.0
    area = 0.0
    for iy in range(ny - 1):
        for ix in range(nx - 1):
            index = 0
            for k in range(4):
                if mask[iy + _SQUARE_CORNERS[k, 0], ix + _SQUARE_CORNERS[k, 1]]:
                    index |= 1 << k
            t = 0
            while t < 4 and _SQUARE_LINES[index, t] >= 0:
                ea = _SQUARE_LINES[index, t]
                eb = _SQUARE_LINES[index, t + 1]
                a0 = (iy + _SQUARE_EDGE_MIDPOINTS[ea, 0]) * spacing[0]
                a1 = (ix + _SQUARE_EDGE_MIDPOINTS[ea, 1]) * spacing[1]
                b0 = (iy + _SQUARE_EDGE_MIDPOINTS[eb, 0]) * spacing[0]
                b1 = (ix + _SQUARE_EDGE_MIDPOINTS[eb, 1]) * spacing[1]
                # 2 x signed area of the triangle (origin, a, b); the signs cancel outside the ROI
                area += a0 * b1 - b0 * a1
                d0 = a0 - b0
                d1 = a1 - b1
                perimeter += np.sqrt(d0 * d0 + d1 * d1)
                t += 2
    return perimeter, area / 2.0


@numba.njit(cache=True)
def edge_vertices(mask):
    """Mesh vertices: midpoints of every edge joining an ROI and a background voxel.

    ``mask``: uint8 (z, y, x) with an empty border layer (a 2D mask as one
    slice). Returns int64 (n, 3) doubled-grid coordinates (z, y, x).
    """
    nz, ny, nx = mask.shape
    n = 0
    for iz in range(nz):
        for iy in range(ny):
            for ix in range(nx):
                m = mask[iz, iy, ix]
                if iz + 1 < nz and mask[iz + 1, iy, ix] != m:
                    n += 1
                if iy + 1 < ny and mask[iz, iy + 1, ix] != m:
                    n += 1
                if ix + 1 < nx and mask[iz, iy, ix + 1] != m:
                    n += 1
    out = np.empty((n, 3), dtype=np.int64)
    n = 0
    for iz in range(nz):
        for iy in range(ny):
            for ix in range(nx):
                m = mask[iz, iy, ix]
                if iz + 1 < nz and mask[iz + 1, iy, ix] != m:
                    out[n, 0] = 2 * iz + 1
                    out[n, 1] = 2 * iy
                    out[n, 2] = 2 * ix
                    n += 1
                if iy + 1 < ny and mask[iz, iy + 1, ix] != m:
                    out[n, 0] = 2 * iz
                    out[n, 1] = 2 * iy + 1
                    out[n, 2] = 2 * ix
                    n += 1
                if ix + 1 < nx and mask[iz, iy, ix + 1] != m:
                    out[n, 0] = 2 * iz
                    out[n, 1] = 2 * iy
                    out[n, 2] = 2 * ix + 1
                    n += 1
    return out


@numba.njit(cache=True)
def _squared_distance(xyz, i, j):
    d0 = xyz[i, 0] - xyz[j, 0]
    d1 = xyz[i, 1] - xyz[j, 1]
    d2 = xyz[i, 2] - xyz[j, 2]
    return d0 * d0 + d1 * d1 + d2 * d2


@numba.njit(cache=True)
def mesh_diameters(vertices, spacing):
    """Largest vertex distances (mm): within a z plane, a y plane, an x plane, overall.

    ``vertices``: int64 (n, 3) doubled-grid coordinates from :func:`edge_vertices`;
    ``spacing``: float64 (3,), mm. Returns float64 (4,) in PyRadiomics' order
    (slice, column, row, 3D); zeros when there are no vertices.

    The maximum of a distance over a point set is reached at a vertex of its
    convex hull, and a point lying between two others on an axis-aligned line
    is no hull vertex. So only points at an end of their line along the axes
    spanning the plane (all three axes for the 3D diameter) are compared, all
    pairs of them, which leaves the maxima unchanged and avoids O(n^2) over
    the whole mesh.
    """
    n = vertices.shape[0]
    out = np.zeros(4)
    if n == 0:
        return out
    size = np.zeros(3, dtype=np.int64)
    for i in range(n):
        for d in range(3):
            if vertices[i, d] + 1 > size[d]:
                size[d] = vertices[i, d] + 1
    xyz = np.empty((n, 3))
    for i in range(n):
        for d in range(3):
            xyz[i, d] = (0.5 * vertices[i, d]) * spacing[d]

    # Bit d of extreme[i]: vertex i is the first or last on its line along axis d.
    extreme = np.zeros(n, dtype=np.int64)
    for d in range(3):
        u = (d + 1) % 3
        w = (d + 2) % 3
        low = np.full((size[u], size[w]), size[d], dtype=np.int64)
        high = np.full((size[u], size[w]), -1, dtype=np.int64)
        for i in range(n):
            p = vertices[i, d]
            if p < low[vertices[i, u], vertices[i, w]]:
                low[vertices[i, u], vertices[i, w]] = p
            if p > high[vertices[i, u], vertices[i, w]]:
                high[vertices[i, u], vertices[i, w]] = p
        for i in range(n):
            p = vertices[i, d]
            if p == low[vertices[i, u], vertices[i, w]] or p == high[vertices[i, u], vertices[i, w]]:
                extreme[i] |= 1 << d

    # Planar diameters: candidates grouped by their coordinate along the plane normal.
    for d in range(3):
        need = 7 ^ (1 << d)
        count = np.zeros(size[d] + 1, dtype=np.int64)
        for i in range(n):
            if extreme[i] & need == need:
                count[vertices[i, d] + 1] += 1
        for k in range(size[d]):
            count[k + 1] += count[k]
        order = np.empty(count[size[d]], dtype=np.int64)
        fill = count[:-1].copy()
        for i in range(n):
            if extreme[i] & need == need:
                order[fill[vertices[i, d]]] = i
                fill[vertices[i, d]] += 1
        best = 0.0
        for k in range(size[d]):
            for a in range(count[k], count[k + 1]):
                for b in range(a + 1, count[k + 1]):
                    dist = _squared_distance(xyz, order[a], order[b])
                    if dist > best:
                        best = dist
        out[d] = np.sqrt(best)

    candidates = np.flatnonzero(extreme == 7)
    best = 0.0
    for a in range(candidates.shape[0]):
        for b in range(a + 1, candidates.shape[0]):
            dist = _squared_distance(xyz, candidates[a], candidates[b])
            if dist > best:
                best = dist
    out[3] = np.sqrt(best)
    return out
