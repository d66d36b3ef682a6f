"""The names a parameter file may use, as data: feature classes and their features, image types,
interpolators, boundary modes, Laws kernels.

They live here, below the layers that implement them, so that validating a parameter file needs
no feature kernel, filter or SciPy import. Each implementing module checks itself against these
lists (``tests/params/test_names.py``): a feature added to a family must be named here too.
"""

from __future__ import annotations

__all__ = [
    "BOUNDARIES",
    "FEATURE_CLASSES",
    "FEATURE_NAMES",
    "IBSI_FILTER_TYPES",
    "IMAGE_TYPES",
    "INTERPOLATION_ORDERS",
    "INTERPOLATORS",
    "LAWS_KERNEL_NAMES",
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
