"""IBSI-mode extraction: IBSI processing, then every IBSI 1 family (work in progress)."""

from __future__ import annotations


def extract_ibsi(image, mask, config) -> dict[str, float]:
    """Compute every IBSI 1 feature of one ROI under an IBSI configuration.

    Parameters
    ----------
    image : path, SimpleITK.Image or xarray.DataArray
        The image (store volumes as returned by ``radflow.store.volume.open_volume``).
    mask : path, SimpleITK.Image or xarray.DataArray
        The ROI mask on the image grid (non-zero inside).
    config : str, path or IbsiConfig
        ``"phantom"``, ``"A"`` .. ``"E"``, a YAML path or a loaded configuration.

    Returns
    -------
    dict of str to float
        Keys exactly the IBSI submission tags (``morph_volume``, ``cm_joint_max_3D_avg``,
        ``diag_*`` rows' tags ...).
    """
    raise NotImplementedError("extract_ibsi is being written")
