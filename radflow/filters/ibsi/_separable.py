"""Separable filter banks and their right-angle rotations (Laws kernels, separable wavelets).

A *bank* is a cascade of stages; each stage holds one odd-length 1D filter per
filtered axis, in IBSI letter order (x, y[, z]): ``E5L5S5`` puts E5 along x,
L5 along y and S5 along z. Filters are convolved (not correlated) and centred
on their middle tap, as the consensus response maps require.

Rotation invariance (IBSI 2, "Rotation invariance"): a filter is applied in
each orientation of the group of right-angle rotations (24 in 3D, 4 in 2D) and
the responses are pooled. Rotating a separable kernel permutes its axes and
reverses some of its 1D filters; a cascade rotates as a whole, every stage the
same way.
"""

from __future__ import annotations

import itertools

import numpy as np

from radflow._lazy import load

ndimage = load("scipy.ndimage")  # IBSI filters only; not on PyRadiomics-mode extraction

#: Array axis of each IBSI filter axis x, y, z for (z, y, x) arrays.
_AXES_XYZ = (-1, -2, -3)


def rotations(ndim: int) -> list[tuple[tuple[int, ...], tuple[bool, ...]]]:
    """The right-angle rotations of an `ndim`-D grid as (axis permutation, axis reversals).

    Rotation ``(perm, flip)`` maps the filter of axis ``perm[i]`` onto axis
    ``i``, reversed where ``flip[i]``; only proper rotations (determinant +1)
    are listed: 24 in 3D, 4 in 2D. The identity comes first.
    """
    out = []
    for perm in itertools.permutations(range(ndim)):
        parity = sum(1 for i in range(ndim) for j in range(i + 1, ndim) if perm[i] > perm[j]) % 2
        for flip in itertools.product((False, True), repeat=ndim):
            if (parity + sum(flip)) % 2 == 0:
                out.append((perm, flip))
    return out


def apply_bank(image: np.ndarray, bank, mode: str) -> np.ndarray:
    """Convolve `image` with every stage of `bank` along the IBSI axes x, y[, z]."""
    out = image
    for axis, weights in _operations(bank):
        out = ndimage.convolve1d(out, weights, axis=axis, mode=mode)
    return out


def pooled_response(image: np.ndarray, bank, mode: str, pooling: str | None) -> np.ndarray:
    """Response to `bank`, or pooled over its rotations when `pooling` is "max" or "average".

    The rotated banks are filtered as a tree: banks that begin with the same
    1D convolutions share their partial result, and identical banks are
    filtered once (average pooling counts them with their multiplicity). The
    24 rotations of Laws E5L5S5 take 26 1D convolutions instead of 72, of
    db3 LLH 40, of db3 HHH at level 2 (6 per rotation) 38 instead of 144.
    """
    if pooling is None:
        return apply_bank(image, bank, mode)
    ndim = len(bank[0])
    counts: dict[tuple, int] = {}
    for perm, flip in rotations(ndim):
        rotated = [
            [stage[p][::-1] if f else stage[p] for p, f in zip(perm, flip)] for stage in bank
        ]
        key = tuple((axis, tuple(weights)) for axis, weights in _operations(rotated))
        counts[key] = counts.get(key, 0) + 1
    pooled = [None]

    def visit(array: np.ndarray, depth: int, keys: list[tuple]) -> None:
        if depth == len(keys[0]):
            response = array if pooling == "max" else array * counts[keys[0]]
            if pooled[0] is None:
                pooled[0] = response
            elif pooling == "max":
                np.maximum(pooled[0], response, out=pooled[0])
            else:
                pooled[0] += response
            return
        branches: dict[tuple, list[tuple]] = {}
        for key in keys:
            branches.setdefault(key[depth], []).append(key)
        for (axis, weights), branch in branches.items():
            visit(
                ndimage.convolve1d(array, np.asarray(weights), axis=axis, mode=mode),
                depth + 1,
                branch,
            )

    visit(image, 0, list(counts))
    if pooling == "average":
        pooled[0] /= len(rotations(ndim))
    return pooled[0]


def _operations(bank) -> list[tuple[int, np.ndarray]]:
    """The bank's 1D convolutions in order, as (array axis, weights)."""
    return [(axis, weights) for stage in bank for axis, weights in zip(_AXES_XYZ, stage)]
