r"""Skeleton (3D): the ROI's medial axis as a branch graph, its lengths, branching and thickness.

A radflow feature class (no PyRadiomics counterpart), computed on the mask once per ROI like
``shape`` (keys ``original_skeleton_<Name>``). The steps:

1. The ROI is resampled by nearest neighbour onto an isotropic grid of spacing :math:`h` (the
   smallest voxel size, or the ``skeletonSpacing`` setting in mm), centred on the original grid
   (:func:`radflow.preprocess.ibsi.interpolation_grid`), with one voxel of background around it.
2. It is thinned to a one-voxel-thick curve skeleton by Lee's 3D thinning
   (:func:`skimage.morphology.skeletonize`), which keeps the ROI's topology: its connected parts
   and its loops (a torus keeps its ring). A part that scikit-image's thinning deletes whole
   (a known defect for parts an even number of voxels thick, scikit-image#3757) is thinned again
   grown by one voxel, else kept as its deepest voxel (:func:`_thin`).
3. The skeleton voxels form a graph (26-connected neighbours); skan splits it into
   *branches*, the paths between voxels whose neighbour count is not 2 (:class:`skan.Skeleton`,
   which also replaces each cluster of touching junction voxels by its minimum spanning tree).
4. Spurs are pruned, once: the end piece of a branch whose end voxel lies inside the maximal
   ball of the branch's deepest voxel (the ball of radius :math:`d`, the distance to the
   background, centred there) says nothing the ball does not, and is removed up to that voxel
   (:func:`_prune`). A ball's thinning, a short line on the staircase of an anisotropic grid,
   becomes its centre; a cylinder or a tube keeps its whole axis.

Definitions. The *neighbours* of a skeleton voxel are the skeleton voxels among its 26
neighbours. An *endpoint* is a skeleton voxel with one neighbour; a *junction* is a 26-connected
cluster of skeleton voxels with three or more neighbours. The *branch graph* has one node per
endpoint, per junction (a whole cluster) and per branch end of degree 2 (the one voxel skan picks
on an isolated loop); its edges are skan's branches, except the short links skan draws inside a
junction cluster (a branch all of whose voxels lie in one junction). A branch's length
:math:`\ell_b` is the length of the polyline through its voxel centres after a moving average
over 5 voxels (2 each side, narrowed at the ends, which stay put; wrapped round a loop), in mm:
the voxel path itself (steps of :math:`h`, :math:`h\sqrt 2`, :math:`h\sqrt 3`) overestimates an
oblique or curved line by 5 % on average and up to 14 % on a fine grid (a ring's zig-zag), the
average keeps a straight line's length exact. Its chord :math:`c_b` is the straight distance
between its two end voxels, in mm.

- ``TotalLength``: the sum of the lengths of all skan's branches, in mm (links inside
  junctions included).
- ``BranchCount`` :math:`N_b`: the edges of the branch graph; ``MeanBranchLength`` and
  ``MaxBranchLength`` the mean and largest :math:`\ell_b`, in mm.
- ``MainPathLength``: the longest of the shortest paths between two points of the skeleton,
  in mm, along the branches (:func:`_main_path`, exact on the branch graph). On a tree, the
  longest path between two endpoints (the "longest shortest path" of Fiji's AnalyzeSkeleton);
  with loops, points inside branches count too: half a ring's length, a lasso's tail plus half
  its loop.
- ``EndpointCount``, ``JunctionCount``: the endpoints and the junctions.
- ``CycleCount``: the independent loops, :math:`E - V + C` of the branch graph (edges, nodes,
  connected parts): 1 for a ring, 0 for any tree.
- ``ComponentCount``: the 26-connected parts of the skeleton (a part thinned to a single voxel
  included).
- ``MeanTortuosity``, ``MaxTortuosity``: :math:`\tau_b = \ell_b / c_b` over the branches that join
  two different nodes (a loop has no chord); the mean is weighted by length,
  :math:`\sum_b \ell_b \tau_b / \sum_b \ell_b`. 1 for a straight branch.
- ``MeanThickness``, ``MaxThickness``, ``ThicknessSD``: :math:`t = 2 d` at each skeleton voxel,
  :math:`d` its Euclidean distance transform (:func:`scipy.ndimage.distance_transform_edt`
  with the grid's spacing): the distance in mm from its centre to the nearest background voxel
  centre, so :math:`t` is the diameter of the largest ball centred there that holds no
  background voxel centre. It tends to the diameter of a thick tube (from above, by less than
  a voxel); a one-voxel-thick line is :math:`2h`. Mean, maximum and population standard
  deviation over the skeleton voxels, in mm.
- ``NormalisedLength``: ``TotalLength`` / :math:`V^{1/3}`, with :math:`V` the ROI's voxel volume
  in mm^3 on its own grid (``shape``'s ``VoxelVolume``); dimensionless.

A ROI thinned to isolated voxels (a ball, a cube: its skeleton is a single point) has no branch:
lengths, ``MainPathLength``, counts of branches, endpoints, junctions and loops are 0, the
tortuosities NaN (no branch, 0 / 0), and its thickness that of the point. A flat-ended
cylinder's curve skeleton stops up to a radius short of each end (its medial surface meets the
axis a radius inside each flat face), so ``TotalLength`` is its axis less up to a diameter.

Why a library. Lee's thinning (topology-preserving deletion of simple points, 8 sub-iterations
over the 26-neighbourhood configurations) is long and subtle and scikit-image's is the
reference implementation; skan's graph (a sparse CSR matrix with physical edge lengths, numba
path walks, junction clusters) is what this module would otherwise rewrite. radflow's own code is
what neither gives: the isotropic resampling (radflow's IBSI grid), the repair of deleted parts,
the spur pruning, the smoothed branch lengths, the junction clusters and the collapsed branch
graph (counts, loops, main path, tortuosity), thickness and the degenerate cases.

References
----------
Lee TC, Kashyap RL, Chu CN. Building skeleton models via 3-D medial surface/axis thinning
algorithms. CVGIP Graph Models Image Process 1994;56:462-78. doi:10.1006/cgip.1994.1042

Nunez-Iglesias J, Blanch AJ, Looker O, Dixon MW, Tilley L. A new Python library to analyse
skeleton images confirms malaria parasite remodelling of the red blood cell membrane skeleton.
PeerJ 2018;6:e4312. doi:10.7717/peerj.4312

Arganda-Carreras I, Fernandez-Gonzalez R, Munoz-Barrutia A, Ortiz-De-Solorzano C. 3D
reconstruction of histological sections: application to mammary gland tissue. Microsc Res Tech
2010;73:1019-29. doi:10.1002/jemt.20829 (AnalyzeSkeleton's longest shortest path)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from skimage.morphology import skeletonize

from radflow._geometry import bounding_box
from radflow._lazy import load
from radflow.errors import SettingsError
from radflow.features._checks import check_spacing, requested_features, roi_box
from radflow.features.registry import Feature
from radflow.preprocess.ibsi import interpolate_mask, interpolation_grid

skan = load("skan")  # imports pandas and networkx: only when a skeleton is computed

__all__ = ["FEATURES", "compute"]

FAMILY = "skeleton"

FEATURES = (
    Feature("TotalLength", FAMILY, None, "mm"),
    Feature("MainPathLength", FAMILY, None, "mm"),
    Feature("MeanBranchLength", FAMILY, None, "mm"),
    Feature("MaxBranchLength", FAMILY, None, "mm"),
    Feature("BranchCount", FAMILY, None, ""),
    Feature("EndpointCount", FAMILY, None, ""),
    Feature("JunctionCount", FAMILY, None, ""),
    Feature("CycleCount", FAMILY, None, ""),
    Feature("ComponentCount", FAMILY, None, ""),
    Feature("MeanTortuosity", FAMILY, None, ""),
    Feature("MaxTortuosity", FAMILY, None, ""),
    Feature("MeanThickness", FAMILY, None, "mm"),
    Feature("MaxThickness", FAMILY, None, "mm"),
    Feature("ThicknessSD", FAMILY, None, "mm"),
    Feature("NormalisedLength", FAMILY, None, ""),
)

_CUBE = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity
#: Half-width in voxels of the moving average along a branch before its length is measured.
_SMOOTHING = 2


def compute(
    mask,
    *,
    spacing_zyx,
    skeleton_spacing: float | None = None,
    features: Iterable[str] | None = None,
) -> dict[str, float]:
    """Skeleton features of an ROI (see the module docstring for the definitions).

    Parameters
    ----------
    mask : (z, y, x) array of bool or int
        The ROI: non-zero voxels. Cropped or not, the result is the same.
    spacing_zyx : sequence of 3 float
        Voxel size in mm, (z, y, x) order.
    skeleton_spacing : float, optional
        Isotropic voxel size in mm of the grid the ROI is skeletonised on (the
        ``skeletonSpacing`` setting); default the smallest of `spacing_zyx`.
    features : iterable of str, optional
        Feature names to compute (default: all of :data:`FEATURES`).

    Returns
    -------
    dict of str to float
        Feature name -> value, in the order of :data:`FEATURES`. Lengths and
        thicknesses in mm, counts as floats, ratios without unit.

    Raises
    ------
    SettingsError
        An unknown feature name; a `skeleton_spacing` that is not a finite number > 0.
    ValueError, TypeError
        A mask that is not a 3D bool/int array, or is empty, or keeps no voxel on the
        `skeleton_spacing` grid; a bad spacing.

    Examples
    --------
    A straight rod 1 voxel thick and 5 long, at 2 mm:

    >>> rod = np.zeros((1, 1, 5), bool)
    >>> rod[0, 0, :] = True
    >>> out = compute(rod, spacing_zyx=(2.0, 2.0, 2.0))
    >>> out["TotalLength"], out["EndpointCount"], out["MeanTortuosity"], out["MeanThickness"]
    (8.0, 2.0, 1.0, 4.0)
    """
    wanted = set(requested_features(features, FEATURES, FAMILY))
    roi, _ = roi_box(mask, ndim=3)
    spacing = check_spacing(spacing_zyx)
    step = _grid_step(spacing, skeleton_spacing)
    volume = float(np.count_nonzero(roi)) * float(np.prod(spacing))

    grid = _isotropic(roi, spacing, step)
    distance = ndimage.distance_transform_edt(grid, sampling=step)  # mm to the background
    skeleton = _prune(_thin(grid), distance, step)
    values = _graph_features(skeleton, step)
    thickness = 2.0 * distance[skeleton]
    values["MeanThickness"] = thickness.mean()
    values["MaxThickness"] = thickness.max()
    values["ThicknessSD"] = thickness.std()
    values["NormalisedLength"] = values["TotalLength"] / volume ** (1.0 / 3.0)
    return {f.name: float(values[f.name]) for f in FEATURES if f.name in wanted}


def _grid_step(spacing: np.ndarray, skeleton_spacing) -> float:
    if skeleton_spacing is None:
        return float(spacing.min())
    if (
        isinstance(skeleton_spacing, bool)
        or not isinstance(skeleton_spacing, Real)
        or not math.isfinite(skeleton_spacing)
        or skeleton_spacing <= 0
    ):
        raise SettingsError(
            f"skeletonSpacing must be a voxel size in mm (a finite number > 0), "
            f"got {skeleton_spacing!r}"
        )
    return float(skeleton_spacing)


def _isotropic(roi: np.ndarray, spacing: np.ndarray, step: float) -> np.ndarray:
    """The ROI on the isotropic grid of spacing `step`, cropped, with 1 voxel of background."""
    padded = np.pad(roi, 1)  # background beyond the box, whatever the interpolation reads there
    if np.all(spacing == step):
        return padded
    grid = interpolation_grid(padded.shape, spacing_zyx=spacing, new_spacing_zyx=(step,) * 3)
    resampled = interpolate_mask(padded, grid, method="nearest")
    box = bounding_box(resampled)
    if box is None:
        raise ValueError(
            f"the ROI keeps no voxel on the skeleton grid of {step:g} mm (voxel size "
            f"{', '.join(f'{s:g}' for s in spacing)} mm); set a smaller skeletonSpacing"
        )
    return np.pad(resampled[box], 1)


def _thin(grid: np.ndarray) -> np.ndarray:
    """Lee's thinning of `grid`, with no 26-connected part of the ROI left without a skeleton.

    scikit-image's thinning (0.26 and earlier, issue scikit-image#3757) can delete a whole part
    whose thickness is an even number of voxels (a 2 x 2 rod, a 4 x 4 x 4 cube, a ball centred
    between voxels), although thinning keeps every part. Such a part is thinned again grown by one
    voxel towards +z, +y and +x (its thickness made odd; the skeleton of the grown part lies inside
    the part, the centre of a one-voxel shift), and, if that is empty too, keeps the voxel deepest
    inside it (largest distance to the background): its skeleton is a point.
    """
    skeleton = skeletonize(grid, method="lee").astype(bool)
    parts, n_parts = ndimage.label(grid, structure=_CUBE)
    if n_parts == 0:
        return skeleton
    kept = ndimage.maximum(skeleton, parts, index=np.arange(1, n_parts + 1))
    boxes = ndimage.find_objects(parts)
    for label in np.flatnonzero(np.asarray(kept) == 0) + 1:
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in boxes[label - 1])
        part = parts[box] == label
        grown = part.copy()
        grown[1:] |= part[:-1]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :, 1:] |= grown[:, :, :-1].copy()
        again = skeletonize(np.pad(grown, 1), method="lee").astype(bool)[1:-1, 1:-1, 1:-1]
        again &= part
        if not again.any():
            depth = ndimage.distance_transform_edt(np.pad(part, 1))[1:-1, 1:-1, 1:-1]
            again[np.unravel_index(np.argmax(depth), part.shape)] = True
        skeleton[box] |= again
    return skeleton


def _prune(skeleton: np.ndarray, distance: np.ndarray, step: float) -> np.ndarray:
    """`skeleton` without the end pieces that lie inside a maximal ball of their own branch.

    For each end voxel :math:`t` of a branch (one neighbour), the deepest voxel :math:`p` of the
    branch (largest distance :math:`d_p` to the background; among equals, the farthest from
    :math:`t` along the branch): when :math:`|t - p| < d_p` the voxels from :math:`t` up to
    :math:`p` are removed. One pass, on skan's branches.
    """
    neighbours = _neighbours(skeleton)
    if not neighbours.any():
        return skeleton
    graph = skan.Skeleton(skeleton, spacing=step, keep_images=False)
    paths = graph.paths.tocsr()
    coordinates = np.asarray(graph.coordinates, dtype=np.intp)
    tips = neighbours[tuple(coordinates.T)] == 1
    pruned = skeleton.copy()
    for i in range(paths.shape[0]):
        ids = paths.indices[paths.indptr[i] : paths.indptr[i + 1]]
        if ids[0] == ids[-1] or not (tips[ids[0]] or tips[ids[-1]]):
            continue
        points = coordinates[ids]
        depth = distance[tuple(points.T)]
        low, high = 0, len(ids) - 1
        if tips[ids[0]]:
            deepest = high - int(np.argmax(depth[::-1]))  # the last of the deepest
            if np.linalg.norm((points[deepest] - points[0]) * step) < depth[deepest]:
                low = deepest
        if tips[ids[-1]]:
            deepest = int(np.argmax(depth))  # the first of the deepest
            if np.linalg.norm((points[deepest] - points[-1]) * step) < depth[deepest]:
                high = deepest
        if low > high:  # both ends inside: the branch shrinks to one deepest voxel
            low = high = int(np.argmax(depth))
        pruned[tuple(points[:low].T)] = False
        pruned[tuple(points[high + 1 :].T)] = False
    return pruned


def _neighbours(skeleton: np.ndarray) -> np.ndarray:
    """Number of skeleton voxels among each skeleton voxel's 26 neighbours (0 off the skeleton).

    Counted at the skeleton voxels only (a few hundred of a grid of 10^5-10^6), whose
    neighbours all lie inside the array: the grid has a background voxel on every side.
    """
    voxels = np.nonzero(skeleton)
    counts = np.zeros(len(voxels[0]), dtype=np.intp)
    for offset in np.argwhere(_CUBE) - 1:
        if offset.any():
            counts += skeleton[tuple(v + o for v, o in zip(voxels, offset))]
    out = np.zeros(skeleton.shape, dtype=np.intp)
    out[voxels] = counts
    return out


def _graph_features(skeleton: np.ndarray, step: float) -> dict[str, float]:
    """Lengths, counts and tortuosity of the skeleton's branch graph."""
    neighbours = _neighbours(skeleton)
    junctions, n_junctions = ndimage.label(neighbours >= 3, structure=_CUBE)
    _, n_components = ndimage.label(skeleton, structure=_CUBE)
    out = {
        "EndpointCount": np.count_nonzero(neighbours == 1),
        "JunctionCount": n_junctions,
        "ComponentCount": n_components,
    }
    if not neighbours.any():  # isolated voxels only: no edge, no branch
        out.update(
            TotalLength=0.0,
            MainPathLength=0.0,
            MeanBranchLength=0.0,
            MaxBranchLength=0.0,
            BranchCount=0,
            CycleCount=0,
            MeanTortuosity=np.nan,
            MaxTortuosity=np.nan,
        )
        return out

    graph = skan.Skeleton(skeleton, spacing=step, keep_images=False)
    paths = graph.paths.tocsr()
    starts, stops = paths.indptr[:-1], paths.indptr[1:]
    src, dst = paths.indices[starts], paths.indices[stops - 1]
    coordinates = np.asarray(graph.coordinates, dtype=np.intp)
    points = coordinates * step  # mm
    lengths = np.array(
        [
            _smoothed_length(points[paths.indices[i:j]], closed=bool(s == d))
            for i, j, s, d in zip(starts, stops, src, dst)
        ]
    )

    # Each skan node -> its junction (1..J), or 0 outside junctions.
    cluster = junctions[tuple(coordinates.T)]
    on_path = cluster[paths.indices]
    lowest = np.minimum.reduceat(on_path, starts)
    inside = (lowest > 0) & (lowest == np.maximum.reduceat(on_path, starts))
    keep = ~inside  # not a link skan draws inside one junction cluster
    src, dst, branch = src[keep], dst[keep], lengths[keep]
    # Branch-graph nodes: a junction is one node, any other branch end its own node.
    node_src = np.where(cluster[src] > 0, cluster[src] - 1, n_junctions + src)
    node_dst = np.where(cluster[dst] > 0, cluster[dst] - 1, n_junctions + dst)
    nodes, index = np.unique(np.concatenate([node_src, node_dst]), return_inverse=True)
    a, b = index[: len(node_src)], index[len(node_src) :]
    n_nodes = len(nodes)
    adjacency = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n_nodes, n_nodes))
    n_parts, _ = csgraph.connected_components(adjacency.tocsr(), directed=False)

    chord = np.linalg.norm(points[dst] - points[src], axis=1)
    open_ = (a != b) & (chord > 0)
    tortuosity = branch[open_] / chord[open_]
    out.update(
        TotalLength=lengths.sum(),
        MainPathLength=_main_path(a, b, branch, n_nodes),
        MeanBranchLength=branch.mean() if len(branch) else 0.0,
        MaxBranchLength=branch.max() if len(branch) else 0.0,
        BranchCount=len(branch),
        CycleCount=len(branch) - n_nodes + n_parts,
        MeanTortuosity=(
            np.sum(branch[open_] * tortuosity) / np.sum(branch[open_]) if open_.any() else np.nan
        ),
        MaxTortuosity=tortuosity.max() if open_.any() else np.nan,
    )
    return out


def _smoothed_length(points: np.ndarray, *, closed: bool) -> float:
    """Length of a branch's polyline after a moving average of its voxel centres (mm).

    The window is :data:`_SMOOTHING` voxels each side, narrowed symmetrically near the ends of an
    open branch (whose end voxels stay put), wrapped around a closed one (whose first voxel skan
    repeats at its end).
    """
    if closed:
        ring = points[:-1]
        half = min(_SMOOTHING, (len(ring) - 1) // 2)
        smooth = sum(np.roll(ring, k, axis=0) for k in range(-half, half + 1)) / (2 * half + 1)
        return float(np.linalg.norm(np.diff(smooth, axis=0, append=smooth[:1]), axis=1).sum())
    n = len(points)
    cumulative = np.concatenate([np.zeros((1, 3)), np.cumsum(points, axis=0)])
    i = np.arange(n)
    half = np.minimum(_SMOOTHING, np.minimum(i, n - 1 - i))
    smooth = (cumulative[i + half + 1] - cumulative[i - half]) / (2 * half + 1)[:, None]
    return float(np.linalg.norm(np.diff(smooth, axis=0), axis=1).sum())


def _main_path(a: np.ndarray, b: np.ndarray, lengths: np.ndarray, n_nodes: int) -> float:
    r"""Longest shortest path between two points of the skeleton, as a graph of branches (mm).

    The branches are segments of lengths :math:`L_e` between nodes :math:`u_e, v_e`, and
    :math:`D` the shortest distances between nodes. The farthest pair of points lies at nodes
    or inside branches, so the longest of:

    - two nodes: :math:`D_{wx}`;
    - a point inside branch :math:`e` and a node :math:`w`: the point where both ways round are
      equal, :math:`(L_e + D_{u_e w} + D_{v_e w}) / 2` (:math:`|D_{u_e w} - D_{v_e w}| \le L_e`);
    - two points of one branch that lies on a loop (:math:`D_{u_e v_e} < L_e`, a loop branch
      included): :math:`(L_e + D_{u_e v_e}) / 2`, half the loop;
    - a point in each of two branches, at :math:`s, t` from their ends :math:`u`: the shortest of
      the four ways round, :math:`\min(s + t + D_{u_1 u_2}, s + L_2 - t + D_{u_1 v_2}, ...)`,
      is largest where its opposite pairs are equal, giving :math:`\min(L_1 + L_2 +
      D_{u_1 u_2} + D_{v_1 v_2}, L_1 + L_2 + D_{u_1 v_2} + D_{v_1 u_2}) / 2` when those
      :math:`s, t` lie inside the branches (else the largest is at an end, a node: the case
      above).

    On a tree this is the longest path between two endpoints; a ring gives half its length.
    """
    if n_nodes == 0:
        return 0.0
    # Shortest of parallel branches between two nodes (a CSR matrix would add duplicates):
    # a dense (nodes x nodes) matrix, nodes are few; loops never shorten a path.
    weights = np.full((n_nodes, n_nodes), np.inf)
    ends = a != b
    np.minimum.at(weights, (a[ends], b[ends]), lengths[ends])
    weights = np.minimum(weights, weights.T)
    weights[~np.isfinite(weights)] = 0  # 0 = no edge for csgraph
    d = csgraph.shortest_path(sparse.csr_matrix(weights), directed=False)  # inf across parts
    np.fill_diagonal(d, 0.0)
    candidates = [d, (lengths[:, None] + d[a] + d[b]) / 2.0]
    on_loop = d[a, b] < lengths
    candidates.append(((lengths + d[a, b]) / 2.0)[on_loop])
    l1, l2 = lengths[:, None], lengths[None, :]
    uu, uv, vu, vv = d[np.ix_(a, a)], d[np.ix_(a, b)], d[np.ix_(b, a)], d[np.ix_(b, b)]
    with np.errstate(invalid="ignore"):  # inf - inf across parts: NaN, not a candidate
        s_plus_t = (l1 + l2 + vv - uu) / 2.0
        s_minus_t = (l1 - l2 + vu - uv) / 2.0
        s, t = (s_plus_t + s_minus_t) / 2.0, (s_plus_t - s_minus_t) / 2.0
        tol = 1e-9 * (1.0 + l1 + l2)
        inside = (s >= -tol) & (s <= l1 + tol) & (t >= -tol) & (t <= l2 + tol)
    np.fill_diagonal(inside, False)  # one branch: the case above
    both = np.minimum(l1 + l2 + uu + vv, l1 + l2 + uv + vu) / 2.0
    candidates.append(both[inside])
    finite = [c[np.isfinite(c)] for c in candidates]
    return float(max((c.max() for c in finite if c.size), default=0.0))
