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
# Four cube indices per line, the first and last named in the comment.
_TRIANGLE_ROWS = (
    "", "083", "190", "183198",  # 0..3
    "12a", "08312a", "92a029", "2832a8a98",  # 4..7
    "b23", "b2008b", "190b23", "b2119b98b",  # 8..11
    "3a1ba3", "a1008a8ba", "9033b9ba9", "98aba8",  # 12..15
    "478", "043473", "190478", "194147173",  # 16..19
    "12a478", "34730412a", "92a902478", "2a9297273479",  # 20..23
    "478b23", "b47b24204", "190478b23", "47b94bb29192",  # 24..27
    "3a1ba3478", "ba114b10447b", "4789033b9ba9", "47b4b99ba",  # 28..31
    "954", "954083", "054015", "854835315",  # 32..35
    "12a954", "08312a954", "2a5542240", "2a5325354834",  # 36..39
    "954b23", "b2008b954", "054015b23", "215258b28548",  # 40..43
    "3a1ba3954", "549a1008a8ba", "54050ba5bb03", "548a58ba8",  # 44..47
    "789579", "309539357", "780017715", "157173",  # 48..51
    "78957912a", "12a309395357", "0288258572a5", "2a5253357",  # 52..55
    "579789b23", "579972209b27", "b23018178157", "21b17b157",  # 56..59
    "7895793a1ba3", "5705097b0a10ba0", "ba003ba50078570", "ba557b",  # 60..63
    "65a", "08365a", "19065a", "18319865a",  # 64..67
    "165126", "165126083", "965906026", "598582526832",  # 68..71
    "b2365a", "b2008b65a", "190b2365a", "b2119b98b65a",  # 72..75
    "63b653513", "08b0b50515b6", "63b036065059", "65969bb98",  # 76..79
    "47865a", "04347365a", "19047865a", "19414717365a",  # 80..83
    "478165126", "043473165126", "478965906026", "739479329596269",  # 84..87
    "b2347865a", "b47b2420465a", "190b2347865a", "47b94bb2919265a",  # 88..91
    "47863b653513", "51b5b610b47b04b", "47863b036065059", "65969b4797b9",  # 92..95
    "a4964a", "a4964a083", "01aa60640", "18316886461a",  # 96..99
    "149124264", "149124264083", "024426", "832824426",  # 100..103
    "b23a4964a", "b2008ba4964a", "b2301aa60640", "64161a148b2118b",  # 104..107
    "964369139b63", "18b081b61149641", "63b036640", "86468b",  # 108..111
    "67a78a89a", "67a0a709a073", "67a1a7178018", "67a1a7173",  # 112..115
    "126168189678", "269129679309739", "078706602", "273267",  # 116..119
    "b2367a78a89a", "207b2709767a9a7", "67a1a7178018b23", "b2117ba61167",  # 120..123
    "896678169b63136", "09167b", "07870603bb60", "67b",  # 124..127
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
                origin = (iz, iy, ix)
                triangles = _CUBE_TRIANGLES[index]
                t = 0
                while t < 15 and triangles[t] >= 0:
                    for d in range(3):
                        a[d] = (origin[d] + _CUBE_EDGE_MIDPOINTS[triangles[t], d]) * spacing[d]
                        b[d] = (origin[d] + _CUBE_EDGE_MIDPOINTS[triangles[t + 1], d]) * spacing[d]
                        c[d] = (origin[d] + _CUBE_EDGE_MIDPOINTS[triangles[t + 2], d]) * spacing[d]
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
def _turn(vertices, u, w, o, a, b):
    """Twice the signed area of (o, a, b) in the (u, w) plane; exact on the integer grid."""
    return (vertices[a, u] - vertices[o, u]) * (vertices[b, w] - vertices[o, w]) - (
        vertices[a, w] - vertices[o, w]
    ) * (vertices[b, u] - vertices[o, u])


@numba.njit(cache=True)
def _planar_hull(vertices, ordered, m, u, w, hull):
    """Monotone-chain convex hull in the (u, w) plane of ``vertices[ordered[:m]]``.

    ``ordered[:m]`` must be sorted by (u, w). Writes the indices of the
    hull's corners (collinear points left out) to ``hull`` (length >= m + 1)
    and returns their count.
    """
    if m < 3:
        for k in range(m):
            hull[k] = ordered[k]
        return m
    top = 0
    for k in range(m):  # lower chain
        while top >= 2 and _turn(vertices, u, w, hull[top - 2], hull[top - 1], ordered[k]) <= 0:
            top -= 1
        hull[top] = ordered[k]
        top += 1
    lower = top + 1
    for k in range(m - 2, -1, -1):  # upper chain
        while top >= lower and _turn(vertices, u, w, hull[top - 2], hull[top - 1], ordered[k]) <= 0:
            top -= 1
        hull[top] = ordered[k]
        top += 1
    return top - 1  # the last point closes the loop on the first


@numba.njit(cache=True)
def mesh_diameters(vertices, spacing):
    """Largest vertex distances (mm): within a z plane, a y plane, an x plane, overall.

    ``vertices``: int64 (n, 3) doubled-grid coordinates from :func:`edge_vertices`;
    ``spacing``: float64 (3,), mm. Returns float64 (4,) in PyRadiomics' order
    (slice, column, row, 3D); zeros when there are no vertices.

    A largest distance joins two corners of the convex hull (any other point
    is a convex combination of corners, and the squared distance is strictly
    convex), and a corner of the 3D hull is a corner of the 2D hull of each of
    its three axis planes. So each plane's diameter compares only its hull
    corners (built from the first and last vertex of each row, the only
    possible corners), and the 3D diameter only the points that are corners
    in all three planes: the same maxima as comparing all O(n^2) pairs, in
    O(n) plus a small number of pairs.
    """
    n = vertices.shape[0]
    out = np.zeros(4)
    xyz = np.empty((n, 3))
    size = np.zeros(3, dtype=np.int64)
    for i in range(n):
        for d in range(3):
            xyz[i, d] = (0.5 * vertices[i, d]) * spacing[d]
            if vertices[i, d] >= size[d]:
                size[d] = vertices[i, d] + 1
    corner = np.zeros(n, dtype=np.int64)  # bit d: hull corner in its plane normal to axis d
    for d in range(3):
        u = (d + 1) % 3
        w = (d + 2) % 3
        first = np.empty((size[d], size[u]), dtype=np.int64)  # per plane and row; -1: none
        last = np.empty((size[d], size[u]), dtype=np.int64)
        for plane in range(size[d]):
            for row in range(size[u]):
                first[plane, row] = -1
                last[plane, row] = -1
        for i in range(n):
            plane = vertices[i, d]
            row = vertices[i, u]
            j = first[plane, row]
            if j < 0 or vertices[i, w] < vertices[j, w]:
                first[plane, row] = i
            j = last[plane, row]
            if j < 0 or vertices[i, w] > vertices[j, w]:
                last[plane, row] = i
        ordered = np.empty(2 * size[u], dtype=np.int64)
        hull = np.empty(2 * size[u] + 1, dtype=np.int64)
        best = 0.0
        for plane in range(size[d]):
            m = 0
            for row in range(size[u]):
                if first[plane, row] >= 0:
                    ordered[m] = first[plane, row]
                    m += 1
                    if last[plane, row] != first[plane, row]:
                        ordered[m] = last[plane, row]
                        m += 1
            h = _planar_hull(vertices, ordered, m, u, w, hull)
            for a in range(h):
                corner[hull[a]] |= 1 << d
                for b in range(a + 1, h):
                    dist = _squared_distance(xyz, hull[a], hull[b])
                    if dist > best:
                        best = dist
        out[d] = np.sqrt(best)
    candidates = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        if corner[i] == 7:
            candidates[m] = i
            m += 1
    best = 0.0
    for a in range(m):
        for b in range(a + 1, m):
            dist = _squared_distance(xyz, candidates[a], candidates[b])
            if dist > best:
                best = dist
    out[3] = np.sqrt(best)
    return out
