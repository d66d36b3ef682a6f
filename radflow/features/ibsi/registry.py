"""IBSI 1 feature registry: every tag radflow's IBSI mode emits.

A feature is identified by its IBSI submission *tag*, the key used in the IBSI
reference tables and in radflow's IBSI output: the tag *stem* of the feature
(``cm_joint_max``) followed, for texture features, by the aggregation suffix
(``cm_joint_max_3D_avg``, ``szm_sze_2_5D``). The table below is the structure
of ``ibsi_1_reference_values_long.csv`` (IBSI 1 reference values, theibsi/
data_sets) written out as data, so that the registry does not need the
reference data at run time. Four entries of that table are corrected here
against the IBSI reference manual and DICOM CID 7478: ``ih_p10`` is GPMT and
``ih_p90`` OZ0C (the table shifts them by one row), ``szm_sze`` is 5QRC (empty
there), and the formal names of the percentiles and of NGTDM complexity.

Family modules
--------------
Each family ``radflow.features.ibsi.<module>`` (see :data:`FAMILIES`) defines
``FEATURES`` (its :class:`IbsiFeature` entries, normally ``features(family)``)
and a public ``compute`` returning ``{tag: value}`` for the tags of the
requested aggregations, NaN only where the IBSI value is undefined. Inputs are
arrays in (z, y, x) order, ``spacing_zyx`` in mm, boolean masks, and
discretised images as integer arrays with grey levels 1..Ng inside the mask.
:mod:`radflow.extraction.ibsi` calls them as follows (keyword names are
the contract)::

    morphology.compute(image, morph_mask=, intensity_mask=, spacing_zyx=)
    local_intensity.compute(image, intensity_mask=, spacing_zyx=)
    statistics.compute(image, intensity_mask=)
    histogram.compute(levels, intensity_mask=)
    ivh.compute(values, intensity_mask=, value_range=, value_step=)
    glcm.compute(levels, intensity_mask=, n_levels=, aggregations=)
    glrlm.compute(levels, intensity_mask=, n_levels=, aggregations=)
    glszm.compute(levels, intensity_mask=, n_levels=, aggregations=)
    gldzm.compute(levels, intensity_mask=, morph_mask=, n_levels=, aggregations=)
    ngtdm.compute(levels, intensity_mask=, n_levels=, aggregations=)
    ngldm.compute(levels, intensity_mask=, n_levels=, aggregations=)

``aggregations`` is a tuple of the suffixes in :data:`DIRECTIONAL_AGGREGATIONS`
or :data:`ZONE_AGGREGATIONS`; slices are planes of constant z (axis 0).
For ``ivh``, ``values`` are the IVH intensities X_d,gl after the IVH
discretisation (intensities, bin centres or bin numbers), ``value_range`` the
total range G = (min, max) of the intensity fraction and ``value_step`` the
discretisation interval w_d (IBSI 1 manual, intensity-volume histogram).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from radflow.features import ibsi as _families  # family modules load on first use

__all__ = [
    "DIRECTIONAL_AGGREGATIONS",
    "FAMILIES",
    "ZONE_AGGREGATIONS",
    "IbsiFeature",
    "family_module",
    "features",
    "lookup",
    "tags",
]

#: Aggregations of GLCM and GLRLM (per-direction matrices): 2D averaged,
#: 2D slice-merged, 2.5D direction-merged, 2.5D merged, 3D averaged, 3D merged.
DIRECTIONAL_AGGREGATIONS = ("2D_avg", "2D_comb", "2_5D_avg", "2_5D_comb", "3D_avg", "3D_comb")
#: Aggregations of GLSZM, GLDZM, NGTDM and NGLDM (one matrix per slice or volume).
ZONE_AGGREGATIONS = ("2D", "2_5D", "3D")
_IMAGE_STAGES = ("init_img", "interp_img")
_ROI_STAGES = ("init_roi", "interp_roi", "reseg_roi")

#: Family key (tag prefix) -> (IBSI family name, module or None, aggregations).
FAMILIES = {
    "morph": ("Morphology", "radflow.features.ibsi.morphology", ("",)),
    "loc": ("Local intensity", "radflow.features.ibsi.local_intensity", ("",)),
    "stat": ("Intensity-based statistics", "radflow.features.ibsi.statistics", ("",)),
    "ih": ("Intensity histogram", "radflow.features.ibsi.histogram", ("",)),
    "ivh": ("Intensity-volume histogram", "radflow.features.ibsi.ivh", ("",)),
    "cm": (
        "Grey level co-occurrence matrix",
        "radflow.features.ibsi.glcm",
        DIRECTIONAL_AGGREGATIONS,
    ),
    "rlm": (
        "Grey level run length matrix",
        "radflow.features.ibsi.glrlm",
        DIRECTIONAL_AGGREGATIONS,
    ),
    "szm": ("Grey level size zone matrix", "radflow.features.ibsi.glszm", ZONE_AGGREGATIONS),
    "dzm": ("Grey level distance zone matrix", "radflow.features.ibsi.gldzm", ZONE_AGGREGATIONS),
    "ngt": (
        "Neighbourhood grey tone difference matrix",
        "radflow.features.ibsi.ngtdm",
        ZONE_AGGREGATIONS,
    ),
    "ngl": (
        "Neighbouring grey level dependence matrix",
        "radflow.features.ibsi.ngldm",
        ZONE_AGGREGATIONS,
    ),
    "diag_img": ("Diagnostics (image)", None, _IMAGE_STAGES),
    "diag_roi": ("Diagnostics (ROI)", None, _ROI_STAGES),
}


@dataclass(frozen=True)
class IbsiFeature:
    """One IBSI 1 feature, under every aggregation it is defined for.

    Attributes
    ----------
    tag_stem : str
        Submission tag without the aggregation suffix (``"cm_joint_max"``).
    family : str
        Family key, the tag prefix (``"cm"``), a key of :data:`FAMILIES`.
    ibsi_id : str or None
        IBSI 4-letter identifier (``"GYBY"``); None for the diagnostics.
    name : str
        Feature name as in the IBSI reference tables (``"Joint maximum"``).
    aggregations : tuple of str
        Tag suffixes (``("2D_avg", ..., "3D_comb")``); ``("",)`` where the
        feature has no aggregation (the tag is the stem).
    formal_name : str
        IBSI formal name (``"cm.joint.max"``), empty for the diagnostics.
    """

    tag_stem: str
    family: str
    ibsi_id: str | None
    name: str
    aggregations: tuple[str, ...]
    formal_name: str = ""

    @property
    def tags(self) -> tuple[str, ...]:
        """The submission tags, one per aggregation."""
        return tuple(
            f"{self.tag_stem}_{agg}" if agg else self.tag_stem for agg in self.aggregations
        )

    def tag(self, aggregation: str = "") -> str:
        """The submission tag for one aggregation; ValueError if it is not defined."""
        if aggregation not in self.aggregations:
            raise ValueError(
                f"{self.tag_stem}: aggregation {aggregation!r} not defined; "
                f"defined: {', '.join(map(repr, self.aggregations))}"
            )
        return f"{self.tag_stem}_{aggregation}" if aggregation else self.tag_stem


# (tag stem, IBSI id, formal name, name); the family is the tag prefix.
_FEATURES = (
    # Morphology
    ("morph_volume", "RNU0", "morph.vol", "Volume (mesh)"),
    ("morph_vol_approx", "YEKZ", "morph.approx.vol", "Volume (voxel counting)"),
    ("morph_area_mesh", "C0JK", "morph.area", "Surface area (mesh)"),
    ("morph_av", "2PR5", "morph.av", "Surface to volume ratio"),
    ("morph_comp_1", "SKGS", "morph.comp.1", "Compactness 1"),
    ("morph_comp_2", "BQWJ", "morph.comp.2", "Compactness 2"),
    ("morph_sph_dispr", "KRCK", "morph.sph.dispr", "Spherical disproportion"),
    ("morph_sphericity", "QCFX", "morph.sphericity", "Sphericity"),
    ("morph_asphericity", "25C7", "morph.asphericity", "Asphericity"),
    ("morph_com", "KLMA", "morph.com", "Centre of mass shift"),
    ("morph_diam", "L0JK", "morph.diam", "Maximum 3D diameter"),
    ("morph_pca_maj_axis", "TDIC", "morph.pca.major", "Major axis length"),
    ("morph_pca_min_axis", "P9VJ", "morph.pca.minor", "Minor axis length"),
    ("morph_pca_least_axis", "7J51", "morph.pca.least", "Least axis length"),
    ("morph_pca_elongation", "Q3CK", "morph.pca.elongation", "Elongation"),
    ("morph_pca_flatness", "N17B", "morph.pca.flatness", "Flatness"),
    ("morph_vol_dens_aabb", "PBX1", "morph.v.dens.aabb", "Volume density (AABB)"),
    ("morph_area_dens_aabb", "R59B", "morph.a.dens.aabb", "Area density (AABB)"),
    ("morph_vol_dens_ombb", "ZH1A", "morph.v.dens.ombb", "Volume density (OMBB)"),
    ("morph_area_dens_ombb", "IQYR", "morph.a.dens.ombb", "Area density (OMBB)"),
    ("morph_vol_dens_aee", "6BDE", "morph.v.dens.aee", "Volume density (AEE)"),
    ("morph_area_dens_aee", "RDD2", "morph.a.dens.aee", "Area density (AEE)"),
    ("morph_vol_dens_mvee", "SWZ1", "morph.v.dens.mvee", "Volume density (MVEE)"),
    ("morph_area_dens_mvee", "BRI8", "morph.a.dens.mvee", "Area density (MVEE)"),
    ("morph_vol_dens_conv_hull", "R3ER", "morph.v.dens.conv.hull", "Volume density (convex hull)"),
    ("morph_area_dens_conv_hull", "7T7F", "morph.a.dens.conv.hull", "Area density (convex hull)"),
    ("morph_integ_int", "99N0", "morph.integ.int", "Integrated intensity"),
    ("morph_moran_i", "N365", "morph.moran.i", "Moran's I index"),
    ("morph_geary_c", "NPT7", "morph.geary.c", "Geary's C measure"),
    # Local intensity
    ("loc_peak_loc", "VJGA", "loc.peak.local", "Local intensity peak"),
    ("loc_peak_glob", "0F91", "loc.peak.global", "Global intensity peak"),
    # Statistics
    ("stat_mean", "Q4LE", "stat.mean", "Mean"),
    ("stat_var", "ECT3", "stat.var", "Variance"),
    ("stat_skew", "KE2A", "stat.skew", "Skewness"),
    ("stat_kurt", "IPH6", "stat.kurt", "(Excess) kurtosis"),
    ("stat_median", "Y12H", "stat.median", "Median"),
    ("stat_min", "1GSF", "stat.min", "Minimum"),
    ("stat_p10", "QG58", "stat.p10", "10th percentile"),
    ("stat_p90", "8DWT", "stat.p90", "90th percentile"),
    ("stat_max", "84IY", "stat.max", "Maximum"),
    ("stat_iqr", "SALO", "stat.iqr", "Interquartile range"),
    ("stat_range", "2OJQ", "stat.range", "Range"),
    ("stat_mad", "4FUA", "stat.mad", "Mean absolute deviation"),
    ("stat_rmad", "1128", "stat.rmad", "Robust mean absolute deviation"),
    ("stat_medad", "N72L", "stat.medad", "Median absolute deviation"),
    ("stat_cov", "7TET", "stat.cov", "Coefficient of variation"),
    ("stat_qcod", "9S40", "stat.qcod", "Quartile coefficient of dispersion"),
    ("stat_energy", "N8CA", "stat.energy", "Energy"),
    ("stat_rms", "5ZWQ", "stat.rms", "Root mean square"),
    # Intensity histogram
    ("ih_mean", "X6K6", "ih.mean", "Mean"),
    ("ih_var", "CH89", "ih.var", "Variance"),
    ("ih_skew", "88K1", "ih.skew", "Skewness"),
    ("ih_kurt", "C3I7", "ih.kurt", "(Excess) kurtosis"),
    ("ih_median", "WIFQ", "ih.median", "Median"),
    ("ih_min", "1PR8", "ih.min", "Minimum"),
    ("ih_p10", "GPMT", "ih.p10", "10th percentile"),
    ("ih_p90", "OZ0C", "ih.p90", "90th percentile"),
    ("ih_max", "3NCY", "ih.max", "Maximum"),
    ("ih_mode", "AMMC", "ih.mode", "Mode"),
    ("ih_iqr", "WR0O", "ih.iqr", "Interquartile range"),
    ("ih_range", "5Z3W", "ih.range", "Range"),
    ("ih_mad", "D2ZX", "ih.mad", "Mean absolute deviation"),
    ("ih_rmad", "WRZB", "ih.rmad", "Robust mean absolute deviation"),
    ("ih_medad", "4RNL", "ih.medad", "Median absolute deviation"),
    ("ih_cov", "CWYJ", "ih.cov", "Coefficient of variation"),
    ("ih_qcod", "SLWD", "ih.qcod", "Quartile coefficient of dispersion"),
    ("ih_entropy", "TLU2", "ih.entropy", "Entropy"),
    ("ih_uniformity", "BJ5W", "ih.uniformity", "Uniformity"),
    ("ih_max_grad", "12CE", "ih.max.grad", "Maximum histogram gradient"),
    ("ih_max_grad_g", "8E6O", "ih.max.grad.gl", "Maximum histogram gradient intensity"),
    ("ih_min_grad", "VQB3", "ih.min.grad", "Minimum histogram gradient"),
    ("ih_min_grad_g", "RHQZ", "ih.min.grad.gl", "Minimum histogram gradient intensity"),
    # Intensity volume histogram
    ("ivh_v10", "BC2M", "ivh.V10", "Volume fraction at 10% intensity"),
    ("ivh_v90", "BC2M", "ivh.V90", "Volume fraction at 90% intensity"),
    ("ivh_i10", "GBPN", "ivh.I10", "Intensity at 10% volume"),
    ("ivh_i90", "GBPN", "ivh.I90", "Intensity at 90% volume"),
    (
        "ivh_diff_v10_v90",
        "DDTU",
        "ivh.V10minusV90",
        "Volume fraction difference between 10% and 90% intensity",
    ),
    (
        "ivh_diff_i10_i90",
        "CNV2",
        "ivh.I10minusI90",
        "Intensity difference between 10% and 90% volume",
    ),
    ("ivh_auc", "9CMM", "ivh.auc", "Area under the IVH curve"),
    # Co-occurrence matrix
    ("cm_joint_max", "GYBY", "cm.joint.max", "Joint maximum"),
    ("cm_joint_avg", "60VM", "cm.joint.avg", "Joint average"),
    ("cm_joint_var", "UR99", "cm.joint.var", "Joint variance"),
    ("cm_joint_entr", "TU9B", "cm.joint.entr", "Joint entropy"),
    ("cm_diff_avg", "TF7R", "cm.diff.avg", "Difference average"),
    ("cm_diff_var", "D3YU", "cm.diff.var", "Difference variance"),
    ("cm_diff_entr", "NTRS", "cm.diff.entr", "Difference entropy"),
    ("cm_sum_avg", "ZGXS", "cm.sum.avg", "Sum average"),
    ("cm_sum_var", "OEEB", "cm.sum.var", "Sum variance"),
    ("cm_sum_entr", "P6QZ", "cm.sum.entr", "Sum entropy"),
    ("cm_energy", "8ZQL", "cm.energy", "Angular second moment"),
    ("cm_contrast", "ACUI", "cm.contrast", "Contrast"),
    ("cm_dissimilarity", "8S9J", "cm.dissimilarity", "Dissimilarity"),
    ("cm_inv_diff", "IB1Z", "cm.inv.diff", "Inverse difference"),
    ("cm_inv_diff_norm", "NDRX", "cm.inv.diff.norm", "Normalised inverse difference"),
    ("cm_inv_diff_mom", "WF0Z", "cm.inv.diff.mom", "Inverse difference moment"),
    (
        "cm_inv_diff_mom_norm",
        "1QCO",
        "cm.inv.diff.mom.norm",
        "Normalised inverse difference moment",
    ),
    ("cm_inv_var", "E8JP", "cm.inv.var", "Inverse variance"),
    ("cm_corr", "NI2N", "cm.corr", "Correlation"),
    ("cm_auto_corr", "QWB0", "cm.auto.corr", "Autocorrelation"),
    ("cm_clust_tend", "DG8W", "cm.clust.tend", "Cluster tendency"),
    ("cm_clust_shade", "7NFM", "cm.clust.shade", "Cluster shade"),
    ("cm_clust_prom", "AE86", "cm.clust.prom", "Cluster prominence"),
    ("cm_info_corr1", "R8DG", "cm.info.corr.1", "Information correlation 1"),
    ("cm_info_corr2", "JN9H", "cm.info.corr.2", "Information correlation 2"),
    # Run length matrix
    ("rlm_sre", "22OV", "rlm.sre", "Short runs emphasis"),
    ("rlm_lre", "W4KF", "rlm.lre", "Long runs emphasis"),
    ("rlm_lgre", "V3SW", "rlm.lgre", "Low grey level run emphasis"),
    ("rlm_hgre", "G3QZ", "rlm.hgre", "High grey level run emphasis"),
    ("rlm_srlge", "HTZT", "rlm.srlge", "Short run low grey level emphasis"),
    ("rlm_srhge", "GD3A", "rlm.srhge", "Short run high grey level emphasis"),
    ("rlm_lrlge", "IVPO", "rlm.lrlge", "Long run low grey level emphasis"),
    ("rlm_lrhge", "3KUM", "rlm.lrhge", "Long run high grey level emphasis"),
    ("rlm_glnu", "R5YN", "rlm.glnu", "Grey level non-uniformity"),
    ("rlm_glnu_norm", "OVBL", "rlm.glnu.norm", "Normalised grey level non-uniformity"),
    ("rlm_rlnu", "W92Y", "rlm.rlnu", "Run length non-uniformity"),
    ("rlm_rlnu_norm", "IC23", "rlm.rlnu.norm", "Normalised run length non-uniformity"),
    ("rlm_r_perc", "9ZK5", "rlm.r.perc", "Run percentage"),
    ("rlm_gl_var", "8CE5", "rlm.gl.var", "Grey level variance"),
    ("rlm_rl_var", "SXLW", "rlm.rl.var", "Run length variance"),
    ("rlm_rl_entr", "HJ9O", "rlm.rl.entr", "Run entropy"),
    # Size zone matrix
    ("szm_sze", "5QRC", "szm.sze", "Small zone emphasis"),
    ("szm_lze", "48P8", "szm.lze", "Large zone emphasis"),
    ("szm_lgze", "XMSY", "szm.lgze", "Low grey level emphasis"),
    ("szm_hgze", "5GN9", "szm.hgze", "High grey level emphasis"),
    ("szm_szlge", "5RAI", "szm.szlge", "Small zone low grey level emphasis"),
    ("szm_szhge", "HW1V", "szm.szhge", "Small zone high grey level emphasis"),
    ("szm_lzlge", "YH51", "szm.lzlge", "Large zone low grey level emphasis"),
    ("szm_lzhge", "J17V", "szm.lzhge", "Large zone high grey level emphasis"),
    ("szm_glnu", "JNSA", "szm.glnu", "Grey level non-uniformity"),
    ("szm_glnu_norm", "Y1RO", "szm.glnu.norm", "Normalised grey level non-uniformity"),
    ("szm_zsnu", "4JP3", "szm.zsnu", "Zone size non-uniformity"),
    ("szm_zsnu_norm", "VB3A", "szm.zsnu.norm", "Normalised zone size non-uniformity"),
    ("szm_z_perc", "P30P", "szm.z.perc", "Zone percentage"),
    ("szm_gl_var", "BYLV", "szm.gl.var", "Grey level variance"),
    ("szm_zs_var", "3NSA", "szm.zs.var", "Zone size variance"),
    ("szm_zs_entr", "GU8N", "szm.zs.entr", "Zone size entropy"),
    # Distance zone matrix
    ("dzm_sde", "0GBI", "dzm.sde", "Small distance emphasis"),
    ("dzm_lde", "MB4I", "dzm.lde", "Large distance emphasis"),
    ("dzm_lgze", "S1RA", "dzm.lgze", "Low grey level emphasis"),
    ("dzm_hgze", "K26C", "dzm.hgze", "High grey level emphasis"),
    ("dzm_sdlge", "RUVG", "dzm.sdlge", "Small distance low grey level emphasis"),
    ("dzm_sdhge", "DKNJ", "dzm.sdhge", "Small distance high grey level emphasis"),
    ("dzm_ldlge", "A7WM", "dzm.ldlge", "Large distance low grey level emphasis"),
    ("dzm_ldhge", "KLTH", "dzm.ldhge", "Large distance high grey level emphasis"),
    ("dzm_glnu", "VFT7", "dzm.glnu", "Grey level non-uniformity"),
    ("dzm_glnu_norm", "7HP3", "dzm.glnu.norm", "Normalised grey level non-uniformity"),
    ("dzm_zdnu", "V294", "dzm.zdnu", "Zone distance non-uniformity"),
    ("dzm_zdnu_norm", "IATH", "dzm.zdnu.norm", "Normalised zone distance non-uniformity"),
    ("dzm_z_perc", "VIWW", "dzm.z.perc", "Zone percentage"),
    ("dzm_gl_var", "QK93", "dzm.gl.var", "Grey level variance"),
    ("dzm_zd_var", "7WT1", "dzm.zd.var", "Zone distance variance"),
    ("dzm_zd_entr", "GBDU", "dzm.zd.entr", "Zone distance entropy"),
    # Neighbourhood grey tone difference matrix
    ("ngt_coarseness", "QCDE", "ngt.coarseness", "Coarseness"),
    ("ngt_contrast", "65HE", "ngt.contrast", "Contrast"),
    ("ngt_busyness", "NQ30", "ngt.busyness", "Busyness"),
    ("ngt_complexity", "HDEZ", "ngt.complexity", "Complexity"),
    ("ngt_strength", "1X9X", "ngt.strength", "Strength"),
    # Neighbouring grey level dependence matrix
    ("ngl_lde", "SODN", "ngl.lde", "Low dependence emphasis"),
    ("ngl_hde", "IMOQ", "ngl.hde", "High dependence emphasis"),
    ("ngl_lgce", "TL9H", "ngl.lgce", "Low grey level count emphasis"),
    ("ngl_hgce", "OAE7", "ngl.hgce", "High grey level count emphasis"),
    ("ngl_ldlge", "EQ3F", "ngl.ldlge", "Low dependence low grey level emphasis"),
    ("ngl_ldhge", "JA6D", "ngl.ldhge", "Low dependence high grey level emphasis"),
    ("ngl_hdlge", "NBZI", "ngl.hdlge", "High dependence low grey level emphasis"),
    ("ngl_hdhge", "9QMG", "ngl.hdhge", "High dependence high grey level emphasis"),
    ("ngl_glnu", "FP8K", "ngl.glnu", "Grey level non-uniformity"),
    ("ngl_glnu_norm", "5SPA", "ngl.glnu.norm", "Normalised grey level non-uniformity"),
    ("ngl_dcnu", "Z87G", "ngl.dcnu", "Dependence count non-uniformity"),
    ("ngl_dcnu_norm", "OKJI", "ngl.dcnu.norm", "Normalised dependence count non-uniformity"),
    ("ngl_dc_perc", "6XV8", "ngl.dc.perc", "Dependence count percentage"),
    ("ngl_gl_var", "1PFV", "ngl.gl.var", "Grey level variance"),
    ("ngl_dc_var", "DNX2", "ngl.dc.var", "Dependence count variance"),
    ("ngl_dc_entr", "FCBV", "ngl.dc.entr", "Dependence count entropy"),
    ("ngl_dc_energy", "CAS9", "ngl.dc.energy", "Dependence count energy"),
)

# Diagnostics (IBSI 1 reference tables, "Diagnostics-*" rows): tag stem and name;
# the tag is the stem followed by the stage (init_img, interp_img; init_roi,
# interp_roi, reseg_roi).
_IMAGE_DIAGNOSTICS = (
    ("img_dim_x", "Image dimension x"),
    ("img_dim_y", "Image dimension y"),
    ("img_dim_z", "Image dimension z"),
    ("vox_dim_x", "Voxel dimension x"),
    ("vox_dim_y", "Voxel dimension y"),
    ("vox_dim_z", "Voxel dimension z"),
    ("mean_int", "Mean intensity"),
    ("min_int", "Minimum intensity"),
    ("max_int", "Maximum intensity"),
)
_ROI_DIAGNOSTICS = (
    ("int_mask_dim_x", "Int. mask dimension x"),
    ("int_mask_dim_y", "Int. mask dimension y"),
    ("int_mask_dim_z", "Int. mask dimension z"),
    ("int_mask_bb_dim_x", "Int. mask bounding box dimension x"),
    ("int_mask_bb_dim_y", "Int. mask bounding box dimension y"),
    ("int_mask_bb_dim_z", "Int. mask bounding box dimension z"),
    ("morph_mask_bb_dim_x", "Morph. mask bounding box dimension x"),
    ("morph_mask_bb_dim_y", "Morph. mask bounding box dimension y"),
    ("morph_mask_bb_dim_z", "Morph. mask bounding box dimension z"),
    ("int_mask_vox_count", "Int. mask voxel count"),
    ("morph_mask_vox_count", "Morph. mask voxel count"),
    ("int_mask_mean_int", "Int. mask mean intensity"),
    ("int_mask_min_int", "Int. mask minimum intensity"),
    ("int_mask_max_int", "Int. mask maximum intensity"),
)


@cache
def _registry() -> tuple[IbsiFeature, ...]:
    out = []
    for stem, ibsi_id, formal, name in _FEATURES:
        family = stem.split("_", 1)[0]
        out.append(IbsiFeature(stem, family, ibsi_id or None, name, FAMILIES[family][2], formal))
    for family, rows in (("diag_img", _IMAGE_DIAGNOSTICS), ("diag_roi", _ROI_DIAGNOSTICS)):
        out.extend(
            IbsiFeature(stem, family, None, name, FAMILIES[family][2]) for stem, name in rows
        )
    return tuple(out)


def features(family: str | None = None) -> tuple[IbsiFeature, ...]:
    """All IBSI features in reference-table order, or those of one family key."""
    if family is not None and family not in FAMILIES:
        raise KeyError(f"unknown IBSI family {family!r}; known: {', '.join(FAMILIES)}")
    return tuple(f for f in _registry() if family is None or f.family == family)


@cache
def _by_tag() -> dict[str, tuple[IbsiFeature, str]]:
    return {tag: (f, agg) for f in _registry() for agg, tag in zip(f.aggregations, f.tags)}


def lookup(tag: str) -> tuple[IbsiFeature, str]:
    """The feature and aggregation suffix of a submission tag (``"cm_joint_max_3D_avg"``).

    Raises KeyError naming the tag when it is not an IBSI 1 tag.
    """
    try:
        return _by_tag()[tag]
    except KeyError:
        raise KeyError(f"{tag!r} is not an IBSI 1 submission tag") from None


def tags(family: str | None = None, aggregations: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Submission tags of a family (or all), restricted to some aggregation suffixes.

    Features without aggregation (suffix ``""``) are always included.
    """
    return tuple(
        tag
        for f in features(family)
        for agg, tag in zip(f.aggregations, f.tags)
        if aggregations is None or agg == "" or agg in aggregations
    )


def family_module(family: str):
    """The module computing an IBSI family key."""
    module = FAMILIES[family][1]
    if module is None:
        raise KeyError(f"IBSI family {family!r} is computed by radflow.extraction.ibsi")
    return getattr(_families, module.rpartition(".")[2])
