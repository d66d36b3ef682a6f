"""The explicit feature registry: every feature radflow computes, by family.

Each family module (``radflow.features.glcm`` ...) declares a ``FEATURES``
tuple of :class:`Feature` (texture families through :func:`declare`, from the
table that also holds each feature's formula) and a checked public ``compute``
function returning ``{feature name: value}``. Nothing is discovered by reflection: a feature that
is not listed here does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from radflow import features as _families  # family modules load on first use

#: Family modules in PyRadiomics' order of feature classes
#: (:data:`radflow.params.names.FEATURE_CLASSES`), then radflow's own.
FAMILY_MODULES = {
    "firstorder": "radflow.features.firstorder",
    "shape": "radflow.features.shape",
    "shape2D": "radflow.features.shape2d",
    "glcm": "radflow.features.glcm",
    "glrlm": "radflow.features.glrlm",
    "glszm": "radflow.features.glszm",
    "gldm": "radflow.features.gldm",
    "ngtdm": "radflow.features.ngtdm",
    # radflow's own classes (:data:`radflow.params.names.RADFLOW_FEATURE_NAMES`), after them
    "skeleton": "radflow.features.skeleton",
}


@dataclass(frozen=True)
class Feature:
    """One feature.

    Attributes
    ----------
    name : str
        PyRadiomics feature name (``"JointEntropy"``), the key in its family.
    family : str
        PyRadiomics feature class (``"glcm"``).
    ibsi_id : str or None
        IBSI 4-letter identifier (``"TU9B"``) where the IBSI defines the same
        quantity, else None.
    unit : str
        Physical unit (``"mm^3"``, ``"mm"``, ``"intensity"``, ``""`` if none).
    default : bool
        Enabled when PyRadiomics enables a class without a feature list
        (False for the deprecated ones PyRadiomics skips by default).
    """

    name: str
    family: str
    ibsi_id: str | None = None
    unit: str = ""
    default: bool = True


def declare(family: str, definitions, unit: str = "") -> tuple[Feature, ...]:
    """A family's ``FEATURES`` from its ``{name: (formula, IBSI id, default)}`` table, in order."""
    return tuple(
        Feature(name, family, ibsi_id, unit, default)
        for name, (_, ibsi_id, default) in definitions.items()
    )


def family_module(family: str):
    """The module implementing ``family`` (imported on first use); KeyError names the known ones."""
    try:
        module = FAMILY_MODULES[family]
    except KeyError:
        raise KeyError(
            f"unknown feature class {family!r}; known: {', '.join(FAMILY_MODULES)}"
        ) from None
    return getattr(_families, module.rpartition(".")[2])


def features(family: str | None = None) -> tuple[Feature, ...]:
    """All registered features, or those of one family."""
    families = [family] if family else list(FAMILY_MODULES)
    out: list[Feature] = []
    for fam in families:
        out.extend(family_module(fam).FEATURES)
    return tuple(out)
