"""The name lists of radflow.params.names agree with the modules that implement them.

Parameter files are validated against those lists without importing any kernel, so a feature,
boundary mode or Laws kernel added to an implementation must be named there too.
"""

from radflow.features.registry import FAMILY_MODULES, family_module
from radflow.filters.ibsi.laws import LAWS_KERNELS
from radflow.params import names


def test_feature_names_are_the_families_registries():
    assert tuple(FAMILY_MODULES) == names.FEATURE_CLASSES + tuple(names.RADFLOW_FEATURE_NAMES)
    for family in names.FEATURE_CLASSES:
        registered = tuple(feature.name for feature in family_module(family).FEATURES)
        assert registered == names.FEATURE_NAMES[family], family
    for family, listed in names.RADFLOW_FEATURE_NAMES.items():
        registered = tuple(feature.name for feature in family_module(family).FEATURES)
        assert registered == listed, family


def test_laws_kernel_names_are_the_filters_kernels():
    assert tuple(LAWS_KERNELS) == names.LAWS_KERNEL_NAMES
