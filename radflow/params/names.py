"""The names a parameter file may use, as data: feature classes and their features, image types,
interpolators, boundary modes, Laws kernels.

They live here, below the layers that implement them, so that validating a parameter file needs
no feature kernel, filter or SciPy import. Each implementing module checks itself against these
lists (``tests/params/test_names.py``): a feature added to a family must be named here too.
"""

from __future__ import annotations

import re

__all__ = [
    "BOUNDARIES",
    "FEATURE_CLASSES",
    "FEATURE_NAMES",
    "FEATURE_NAME_PATTERNS",
    "IBSI_FILTER_TYPES",
    "IMAGE_TYPES",
    "INTERPOLATION_ORDERS",
    "INTERPOLATORS",
    "LAWS_KERNEL_NAMES",
    "MAP_SUMMARY_STATISTICS",
    "RADFLOW_FEATURE_NAMES",
    "feature_name_pattern",
]

#: PyRadiomics image types (``imageoperations.get<Type>Image``).
IMAGE_TYPES = (
    "Original", "LoG", "Wavelet", "Square", "SquareRoot", "Logarithm",
    "Exponential", "Gradient", "LBP2D", "LBP3D",
)  # fmt: skip

#: radflow's image types: the IBSI 2 filters of :mod:`radflow.filters.ibsi`.
IBSI_FILTER_TYPES = ("Mean", "LoGIBSI", "Laws", "Gabor", "WaveletIBSI", "Simoncelli")

#: Every feature of each PyRadiomics feature class, in PyRadiomics' order of classes and features.
FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "firstorder": (
        "Energy",
        "TotalEnergy",
        "Entropy",
        "Minimum",
        "10Percentile",
        "90Percentile",
        "Maximum",
        "Mean",
        "Median",
        "InterquartileRange",
        "Range",
        "MeanAbsoluteDeviation",
        "RobustMeanAbsoluteDeviation",
        "RootMeanSquared",
        "StandardDeviation",
        "Skewness",
        "Kurtosis",
        "Variance",
        "Uniformity",
    ),
    "shape": (
        "MeshVolume",
        "VoxelVolume",
        "SurfaceArea",
        "SurfaceVolumeRatio",
        "Sphericity",
        "Compactness1",
        "Compactness2",
        "SphericalDisproportion",
        "Maximum3DDiameter",
        "Maximum2DDiameterSlice",
        "Maximum2DDiameterColumn",
        "Maximum2DDiameterRow",
        "MajorAxisLength",
        "MinorAxisLength",
        "LeastAxisLength",
        "Elongation",
        "Flatness",
    ),
    "shape2D": (
        "MeshSurface",
        "PixelSurface",
        "Perimeter",
        "PerimeterSurfaceRatio",
        "Sphericity",
        "SphericalDisproportion",
        "MaximumDiameter",
        "MajorAxisLength",
        "MinorAxisLength",
        "Elongation",
    ),
    "glcm": (
        "Autocorrelation",
        "JointAverage",
        "ClusterProminence",
        "ClusterShade",
        "ClusterTendency",
        "Contrast",
        "Correlation",
        "DifferenceAverage",
        "DifferenceEntropy",
        "DifferenceVariance",
        "Dissimilarity",
        "JointEnergy",
        "JointEntropy",
        "Homogeneity1",
        "Homogeneity2",
        "Imc1",
        "Imc2",
        "Idm",
        "MCC",
        "Idmn",
        "Id",
        "Idn",
        "InverseVariance",
        "MaximumProbability",
        "SumAverage",
        "SumEntropy",
        "SumVariance",
        "SumSquares",
    ),
    "glrlm": (
        "ShortRunEmphasis",
        "LongRunEmphasis",
        "GrayLevelNonUniformity",
        "GrayLevelNonUniformityNormalized",
        "RunLengthNonUniformity",
        "RunLengthNonUniformityNormalized",
        "RunPercentage",
        "GrayLevelVariance",
        "RunVariance",
        "RunEntropy",
        "LowGrayLevelRunEmphasis",
        "HighGrayLevelRunEmphasis",
        "ShortRunLowGrayLevelEmphasis",
        "ShortRunHighGrayLevelEmphasis",
        "LongRunLowGrayLevelEmphasis",
        "LongRunHighGrayLevelEmphasis",
    ),
    "glszm": (
        "SmallAreaEmphasis",
        "LargeAreaEmphasis",
        "GrayLevelNonUniformity",
        "GrayLevelNonUniformityNormalized",
        "SizeZoneNonUniformity",
        "SizeZoneNonUniformityNormalized",
        "ZonePercentage",
        "GrayLevelVariance",
        "ZoneVariance",
        "ZoneEntropy",
        "LowGrayLevelZoneEmphasis",
        "HighGrayLevelZoneEmphasis",
        "SmallAreaLowGrayLevelEmphasis",
        "SmallAreaHighGrayLevelEmphasis",
        "LargeAreaLowGrayLevelEmphasis",
        "LargeAreaHighGrayLevelEmphasis",
    ),
    "gldm": (
        "SmallDependenceEmphasis",
        "LargeDependenceEmphasis",
        "GrayLevelNonUniformity",
        "GrayLevelNonUniformityNormalized",
        "DependenceNonUniformity",
        "DependenceNonUniformityNormalized",
        "DependencePercentage",
        "GrayLevelVariance",
        "DependenceVariance",
        "DependenceEntropy",
        "LowGrayLevelEmphasis",
        "HighGrayLevelEmphasis",
        "SmallDependenceLowGrayLevelEmphasis",
        "SmallDependenceHighGrayLevelEmphasis",
        "LargeDependenceLowGrayLevelEmphasis",
        "LargeDependenceHighGrayLevelEmphasis",
    ),
    "ngtdm": (
        "Coarseness",
        "Contrast",
        "Busyness",
        "Complexity",
        "Strength",
    ),
}

#: PyRadiomics feature classes, in PyRadiomics' order.
FEATURE_CLASSES = tuple(FEATURE_NAMES)

#: radflow's own feature classes with fixed names (no PyRadiomics counterpart), computed on the
#: mask once per ROI like shape. Enabled only when a parameter file names them: not in
#: :data:`FEATURE_CLASSES`, so no PyRadiomics default enables them and files without them keep
#: their keys and hash.
RADFLOW_FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "skeleton": (
        "TotalLength",
        "MainPathLength",
        "MeanBranchLength",
        "MaxBranchLength",
        "BranchCount",
        "EndpointCount",
        "JunctionCount",
        "CycleCount",
        "ComponentCount",
        "MeanTortuosity",
        "MaxTortuosity",
        "MeanThickness",
        "MaxThickness",
        "ThicknessSD",
        "NormalisedLength",
    ),
}

#: Statistics of a voxel-based map over the ROI (radflow's ``mapSummary`` section), in key order.
MAP_SUMMARY_STATISTICS = (
    "Mean", "StandardDeviation", "Minimum", "10Percentile", "25Percentile", "Median",
    "75Percentile", "90Percentile", "Maximum",
)  # fmt: skip

#: radflow's feature classes whose names carry numbers that depend on the data, as patterns in
#: the order of the class's keys: ``<k>`` is a habitat 1..K, ``<i>`` <= ``<j>`` a pair of labels
#: 0..K (0: outside the ROI; not both 0), K the number of habitats of the ROI's habitat map
#: (:mod:`radflow.features.habitat`). A parameter file names a feature with its numbers
#: (``Volume_2``) or by the stem of its pattern (``Volume``: every k). Not in
#: :data:`FEATURE_CLASSES`: no PyRadiomics default enables them. Check a name with
#: :func:`feature_name_pattern`.
FEATURE_NAME_PATTERNS: dict[str, tuple[str, ...]] = {
    "habitat": (
        "Volume_<k>",
        "Fraction_<k>",
        "Components_<k>",
        "LargestComponentVolume_<k>",
        "ITHScore",
        "MSIPairs_<i>_<j>",
        "MSI_<i>_<j>",
        "MSIContrast",
        "MSIHomogeneity",
        "MSIEnergy",
        "MSICorrelation",
    ),
}

_NUMBER = {"k": "[1-9][0-9]*", "i": "0|[1-9][0-9]*", "j": "0|[1-9][0-9]*"}


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"<([kij])>", pattern)  # literal, placeholder, literal, ...
    regex = "".join(
        re.escape(part) if n % 2 == 0 else f"(?P<{part}>{_NUMBER[part]})"
        for n, part in enumerate(parts)
    )
    return re.compile(regex)


def feature_name_pattern(family: str, name: str) -> str | None:
    """The pattern of ``family`` in :data:`FEATURE_NAME_PATTERNS` that ``name`` names, else None.

    ``name`` is the pattern with its numbers filled in (``Volume_3``, ``MSIPairs_0_2``: k >= 1;
    0 <= i <= j, not both 0; no leading zeros), or the pattern's stem, the text before its first
    number (``Volume``, ``MSIPairs``), which stands for every number; a pattern without numbers
    (``ITHScore``) is its own stem. Whether a habitat number exists depends on the ROI's habitat
    map and is checked when the features are computed.

    Examples
    --------
    >>> feature_name_pattern("habitat", "Volume_2"), feature_name_pattern("habitat", "MSI")
    ('Volume_<k>', 'MSI_<i>_<j>')
    >>> feature_name_pattern("habitat", "MSIPairs_2_1") is None  # i > j
    True
    """
    for pattern in FEATURE_NAME_PATTERNS.get(family, ()):
        if name == pattern.split("_<", 1)[0]:
            return pattern
        match = _pattern_regex(pattern).fullmatch(name)
        if match is None:
            continue
        numbers = {key: int(value) for key, value in match.groupdict().items()}
        if "i" in numbers and (numbers["j"] == 0 or numbers["i"] > numbers["j"]):
            continue  # the (0, 0) pair, or i > j
        return pattern
    return None


#: SimpleITK interpolator names PyRadiomics accepts, with the integer code
#: PyRadiomics documents for each.
INTERPOLATORS = {
    "sitkNearestNeighbor": 1,
    "sitkLinear": 2,
    "sitkBSpline": 3,
    "sitkGaussian": 4,
    "sitkLabelGaussian": 5,
    "sitkHammingWindowedSinc": 6,
    "sitkCosineWindowedSinc": 7,
    "sitkWelchWindowedSinc": 8,
    "sitkLanczosWindowedSinc": 9,
    "sitkBlackmanWindowedSinc": 10,
}

#: IBSI interpolation methods and their spline order (IBSI configurations' ``interpolation``).
INTERPOLATION_ORDERS = {"nearest": 0, "linear": 1, "cubic_spline": 3}

#: Boundary modes of the IBSI 2 filters (IBSI 2 section 2.3).
BOUNDARIES = ("constant", "nearest", "periodic", "mirror")

#: Laws' 1D kernels (IBSI 2 table 4.3), by name.
LAWS_KERNEL_NAMES = ("L3", "E3", "S3", "L5", "E5", "S5", "W5", "R5")
