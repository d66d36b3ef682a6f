"""NIfTI, NRRD and MetaImage reading, with geometry checked against independent writers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from radflow.errors import InputError
from radflow.io.image_file import file_stem, label_sidecar, read_image, read_label_map

#: Oblique (30 degrees about z) and flipped (z reversed) axes, as unit column vectors.
_C, _S = np.cos(np.radians(30.0)), np.sin(np.radians(30.0))
AXES_LPS = np.array([[_C, -_S, 0.0], [_S, _C, 0.0], [0.0, 0.0, -1.0]])
SPACING_XYZ = np.array([0.75, 0.9, 2.5])
ORIGIN_LPS = np.array([-120.5, 80.25, 33.0])


def _volume(shape_zyx=(6, 7, 8)) -> np.ndarray:
    return (np.arange(np.prod(shape_zyx)).reshape(shape_zyx) - 100).astype(np.int16)


def _assert_geometry(image, atol):
    np.testing.assert_allclose(image.GetSpacing(), SPACING_XYZ, rtol=0, atol=atol)
    np.testing.assert_allclose(image.GetOrigin(), ORIGIN_LPS, rtol=0, atol=atol)
    direction = np.reshape(image.GetDirection(), (3, 3))
    np.testing.assert_allclose(direction, AXES_LPS, rtol=0, atol=atol)


def _reference(shape_zyx=(6, 7, 8)) -> sitk.Image:
    image = sitk.Image([shape_zyx[2], shape_zyx[1], shape_zyx[0]], sitk.sitkInt16)
    image.SetSpacing(SPACING_XYZ)
    image.SetOrigin(ORIGIN_LPS)
    image.SetDirection(AXES_LPS.ravel())
    return image


def test_nifti_written_by_nibabel(tmp_path):
    # NIfTI is RAS: x and y flip sign against ITK's LPS.
    ras = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = ras @ AXES_LPS @ np.diag(SPACING_XYZ)
    affine[:3, 3] = ras @ ORIGIN_LPS
    data = _volume()
    nifti = nibabel.Nifti1Image(data.transpose(2, 1, 0), affine)  # nibabel indexes (x, y, z)
    nifti.set_qform(affine, code=1)
    nifti.set_sform(affine, code=1)
    path = tmp_path / "ct.nii.gz"
    nibabel.save(nifti, path)

    image = read_image(path)
    assert image.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data)
    _assert_geometry(image, atol=1e-5)  # the NIfTI header holds float32


def test_nrrd_written_by_pynrrd(tmp_path):
    data = _volume()
    header = {
        "space": "left-posterior-superior",
        "space directions": (AXES_LPS @ np.diag(SPACING_XYZ)).T,  # one row per axis
        "space origin": ORIGIN_LPS,
        "kinds": ["domain"] * 3,
    }
    path = tmp_path / "ct.nrrd"
    nrrd.write(str(path), data.transpose(2, 1, 0), header, index_order="F")

    image = read_image(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data)
    _assert_geometry(image, atol=1e-12)


def test_metaimage_written_by_hand(tmp_path):
    data = _volume()
    (tmp_path / "ct.raw").write_bytes(data.astype("<i2").tobytes())
    # MetaIO's TransformMatrix lists the axis vectors one after the other.
    numbers = lambda values: " ".join(repr(float(v)) for v in values)  # noqa: E731
    (tmp_path / "ct.mhd").write_text(
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"TransformMatrix = {numbers(AXES_LPS.T.ravel())}\n"
        f"Offset = {numbers(ORIGIN_LPS)}\nElementSpacing = {numbers(SPACING_XYZ)}\n"
        "DimSize = 8 7 6\nElementType = MET_SHORT\nElementDataFile = ct.raw\n"
    )
    image = read_image(tmp_path / "ct.mhd")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data)
    _assert_geometry(image, atol=1e-12)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"])
def test_every_supported_ending_reads_back(tmp_path, suffix):
    image = sitk.GetImageFromArray(_volume())
    image.CopyInformation(_reference())
    path = tmp_path / f"x{suffix}"
    sitk.WriteImage(image, str(path))
    if suffix == ".mha":  # endings are matched whatever their case
        path = path.rename(tmp_path / "X.MHA")
    back = read_image(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), _volume())
    _assert_geometry(back, atol=1e-5)


def test_unsupported_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match=r"scan\.dcm: unsupported file type; expected one of"):
        read_image(tmp_path / "scan.dcm")
    with pytest.raises(InputError, match="absent.nrrd: no such file"):
        read_image(tmp_path / "absent.nrrd")

    noise = np.random.default_rng(0).integers(-1000, 1000, (20, 20, 20)).astype(np.int16)
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        good = tmp_path / f"good{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(noise), str(good))
        # ITK zero-fills a truncated NIfTI silently: the reader must notice.
        (tmp_path / f"truncated{suffix}").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "garbage.nii").write_bytes(b"not an image at all" * 30)
    (tmp_path / "garbage.nrrd").write_bytes(b"NRRD0004\ntype: short\n")
    (tmp_path / "garbage.mha").write_text("ObjectType = Image\nNDims = 3\n")
    for name, kind in [
        ("truncated.nii.gz", "NIfTI"),
        ("truncated.nii", "NIfTI"),
        ("truncated.nrrd", "NRRD"),
        ("truncated.mha", "MetaImage"),
        ("garbage.nii", "NIfTI"),
        ("garbage.nrrd", "NRRD"),
        ("garbage.mha", "MetaImage"),
    ]:
        with pytest.raises(InputError) as caught:
            read_image(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / name}: unreadable {kind} file: ")
        assert "\n" not in message and len(message) > len(str(tmp_path / name)) + 30


@pytest.mark.parametrize("name", ["garbage.nii", "garbage.nii.gz"])
def test_a_file_without_nifti_header_is_refused_before_itk_prints(tmp_path, capfd, name):
    path = tmp_path / name
    data = b"not an image at all, " * 40
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(InputError, match="no NIfTI-1 or NIfTI-2 header"):
        read_image(path)
    # ITK's NIfTI library writes its own complaint to file descriptor 2 when it parses such a
    # file: the command line's one-line error must stand alone.
    assert capfd.readouterr().err == ""


def test_not_a_3d_scalar_image(tmp_path):
    sitk.WriteImage(sitk.Image([5, 6], sitk.sitkInt16), str(tmp_path / "flat.nrrd"))
    with pytest.raises(InputError, match="expected a 3-D image, got 2-D"):
        read_image(tmp_path / "flat.nrrd")
    sitk.WriteImage(sitk.Image([4, 5, 6], sitk.sitkVectorFloat32, 3), str(tmp_path / "field.nrrd"))
    with pytest.raises(InputError, match="one value per voxel, got 3"):
        read_image(tmp_path / "field.nrrd")


def test_file_stem():
    assert file_stem("/a/GTV-1.nii.gz") == "GTV-1"
    assert file_stem("b/seg.NRRD") == "seg"
    assert file_stem("c.mhd") == "c"
    assert label_sidecar("/a/GTV.v2.nii.gz") == Path("/a/GTV.v2.json")


# -- label maps --------------------------------------------------------------------


def _write_labels(path, data, reference, **geometry):
    image = sitk.GetImageFromArray(data)
    image.CopyInformation(reference)
    for name, value in geometry.items():
        getattr(image, f"Set{name}")(value)
    sitk.WriteImage(image, str(path))


def test_label_map_with_sidecar_names(tmp_path):
    reference = _reference()
    data = np.zeros((6, 7, 8), np.int32)
    data[1:3, 2:4, 3:5] = 1
    data[4, 5, 6] = 3
    _write_labels(tmp_path / "Tumour seg.nii.gz", data, reference)
    (tmp_path / "Tumour seg.json").write_text(json.dumps({"1": "GTV-1 (primary)", "3": "node"}))
    label = read_label_map(tmp_path / "Tumour seg.nii.gz", reference)
    assert label.key == "tumour_seg" and label.source == "labelmap"
    assert label.rois == {1: "GTV-1 (primary)", 3: "node"}
    assert label.image.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(label.image), data)
    # Within tolerance, the label map takes the reference's geometry exactly.
    assert label.image.GetOrigin() == reference.GetOrigin()
    assert label.image.GetDirection() == reference.GetDirection()
    assert label.image.GetSpacing() == reference.GetSpacing()


def test_label_map_default_names_and_explicit_names(tmp_path):
    reference = _reference()
    data = np.zeros((6, 7, 8), np.uint8)
    data[2, 2, 2] = 1
    _write_labels(tmp_path / "gtv.nrrd", data, reference)
    assert read_label_map(tmp_path / "gtv.nrrd", reference).rois == {1: "gtv"}
    data[3, 3, 3] = 2
    _write_labels(tmp_path / "rois.nrrd", data, reference)
    assert read_label_map(tmp_path / "rois.nrrd", reference).rois == {1: "rois_1", 2: "rois_2"}
    named = read_label_map(tmp_path / "rois.nrrd", reference, names={2: "CTV"})
    assert named.rois == {1: "rois_1", 2: "CTV"}
    with pytest.warns(UserWarning, match=r"\['PTV'\] \(values \[5\]\) have no voxel"):
        rois = read_label_map(tmp_path / "rois.nrrd", reference, names={1: "GTV", 5: "PTV"}).rois
    assert rois == {1: "GTV", 2: "rois_2"}


def test_label_map_float_values_and_large_values(tmp_path):
    reference = _reference()
    data = np.zeros((6, 7, 8), np.float32)
    data[1, 1, 1] = 2.0
    _write_labels(tmp_path / "float.mha", data, reference)
    label = read_label_map(tmp_path / "float.mha", reference)
    assert label.rois == {2: "float"} and label.image.GetPixelID() == sitk.sitkUInt8
    data[2, 2, 2] = 0.5
    _write_labels(tmp_path / "half.mha", data, reference)
    with pytest.raises(InputError, match="half.mha: label values must be integers, found 0.5"):
        read_label_map(tmp_path / "half.mha", reference)

    big = np.zeros((6, 7, 8), np.int32)
    big[0, 0, 0] = 1000
    _write_labels(tmp_path / "atlas.nii", big, reference)
    label = read_label_map(tmp_path / "atlas.nii", reference)
    assert label.image.GetPixelID() == sitk.sitkUInt16 and label.rois == {1000: "atlas"}
    big[0, 0, 1] = -1
    _write_labels(tmp_path / "negative.nii", big, reference)
    with pytest.raises(InputError, match="must be >= 0, found -1"):
        read_label_map(tmp_path / "negative.nii", reference)


def test_empty_roi(tmp_path):
    reference = _reference()
    _write_labels(tmp_path / "empty.nii.gz", np.zeros((6, 7, 8), np.uint8), reference)
    with pytest.raises(InputError, match="empty.nii.gz: empty ROI"):
        read_label_map(tmp_path / "empty.nii.gz", reference)


def test_geometry_mismatch(tmp_path):
    reference = _reference()
    data = np.ones((6, 7, 8), np.uint8)
    shifted = tuple(ORIGIN_LPS + [0.0, 0.5, 0.0])
    _write_labels(tmp_path / "shifted.nrrd", data, reference, Origin=shifted)
    with pytest.raises(InputError) as caught:
        read_label_map(tmp_path / "shifted.nrrd", reference, reference_source=tmp_path / "ct.nrrd")
    message = str(caught.value)
    both = f"{tmp_path / 'shifted.nrrd'}: geometry mismatch with {tmp_path / 'ct.nrrd'}"
    assert message.startswith(both)
    assert "differ by up to 0.5 mm (tolerance 0.001 mm)" in message

    # Half a degree of rotation moves the far corner by about 0.1 mm.
    c, s = np.cos(np.radians(0.5)), np.sin(np.radians(0.5))
    tilted = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) @ AXES_LPS
    _write_labels(tmp_path / "tilted.nrrd", data, reference, Direction=tuple(tilted.ravel()))
    with pytest.raises(InputError, match="geometry mismatch with the reference image"):
        read_label_map(tmp_path / "tilted.nrrd", reference)
    lenient = read_label_map(tmp_path / "tilted.nrrd", reference, tolerance_mm=1.0)
    assert lenient.image.GetDirection() == reference.GetDirection()

    _write_labels(tmp_path / "small.nrrd", np.ones((6, 7, 7), np.uint8), _reference((6, 7, 7)))
    with pytest.raises(InputError, match=r"geometry mismatch .*size \(7, 7, 6\) vs \(8, 7, 6\)"):
        read_label_map(tmp_path / "small.nrrd", reference)


def test_bad_sidecar(tmp_path):
    reference = _reference()
    _write_labels(tmp_path / "gtv.nii.gz", np.ones((6, 7, 8), np.uint8), reference)
    (tmp_path / "gtv.json").write_text("{not json")
    with pytest.raises(InputError, match="gtv.json: unreadable ROI name file"):
        read_label_map(tmp_path / "gtv.nii.gz", reference)
    (tmp_path / "gtv.json").write_text(json.dumps({"zero": "GTV"}))
    with pytest.raises(InputError, match="gtv.json: entry 'zero'"):
        read_label_map(tmp_path / "gtv.nii.gz", reference)


def test_corrupt_gzip_stream_is_reported(tmp_path):
    noise = np.random.default_rng(0).integers(-1000, 1000, (20, 20, 20)).astype(np.int16)
    good = tmp_path / "ok.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(noise), str(good))
    data = bytearray(good.read_bytes())
    data[2000:2100] = bytes(b ^ 0xFF for b in data[2000:2100])  # trailer left intact
    (tmp_path / "flipped.nii.gz").write_bytes(bytes(data))
    with pytest.raises(InputError, match="flipped.nii.gz: unreadable NIfTI file"):
        read_image(tmp_path / "flipped.nii.gz")


def test_multi_member_gzip_is_complete(tmp_path):
    # Concatenated gzip members (bgzip, parallel compressors) are valid: the
    # trailer then holds only the last member's length, and the reader counts.
    data = _volume((20, 20, 20))
    plain = tmp_path / "ct.nii"
    sitk.WriteImage(sitk.GetImageFromArray(data), str(plain))
    raw = plain.read_bytes()
    (tmp_path / "ct.nii.gz").write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(tmp_path / "ct.nii.gz")), data)


# -- NaN and infinite voxels (issue 12) -----------------------------------------------------


def _float_volume(dtype=np.float32) -> np.ndarray:
    values = (_volume() / 4.0).astype(dtype)
    values[1, 2, 3], values[4, 5, 6], values[5, 6, 7] = np.nan, np.inf, -np.inf
    return values


def _nibabel_save(path: Path, data_zyx: np.ndarray, slope=None, inter=None) -> None:
    nifti = nibabel.Nifti1Image(data_zyx.transpose(2, 1, 0), np.eye(4))
    if slope is not None:
        nifti.header.set_slope_inter(slope, inter)
    nibabel.save(nifti, path)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nifti_keeps_its_nan_and_infinite_voxels(tmp_path, suffix, dtype):
    # ITK's NIfTI reader (niftilib) sets every non-finite float voxel to 0, silently.
    values = _float_volume(dtype)
    path = tmp_path / f"pet{suffix}"
    _nibabel_save(path, values)
    assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).all()  # the bug

    image = read_image(path)
    assert image.GetPixelID() == (sitk.sitkFloat32 if dtype == np.float32 else sitk.sitkFloat64)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), values)  # NaN where NaN
    # As the other formats read the same voxels.
    sitk.WriteImage(sitk.GetImageFromArray(values), str(tmp_path / "pet.nrrd"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(tmp_path / "pet.nrrd")), values)


def test_scaled_nifti_keeps_its_non_finite_voxels_scaled(tmp_path):
    # ITK zeroes them and then applies scl_slope/scl_inter: a NaN came out as the intercept.
    values = _float_volume()
    path = tmp_path / "scaled.nii"
    _nibabel_save(path, values, slope=-2.0, inter=1.0)
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(path)))[1, 2, 3] == 1.0  # the bug

    read = sitk.GetArrayFromImage(read_image(path))
    expected = np.asarray(nibabel.load(path).dataobj).transpose(2, 1, 0)
    np.testing.assert_array_equal(read, expected.astype(np.float32))
    assert np.isnan(read[1, 2, 3]) and read[4, 5, 6] == -np.inf and read[5, 6, 7] == np.inf


def test_integer_nifti_is_read_once(tmp_path, monkeypatch):
    # Integer data (scaled or not) cannot hold NaN: nibabel is not asked.
    from radflow.io import image_file

    path = tmp_path / "ct.nii.gz"
    _nibabel_save(path, _volume(), slope=0.5, inter=-10.0)
    monkeypatch.setattr(image_file, "nib", None)
    read = sitk.GetArrayFromImage(read_image(path))
    np.testing.assert_array_equal(read, _volume() * 0.5 - 10.0)


def test_float_nifti_without_a_voxel_itk_could_have_zeroed_is_read_once(tmp_path, monkeypatch):
    # A non-finite voxel comes out of ITK as 0 (or as scl_inter): without either value, nothing
    # can have been zeroed and nibabel is not asked.
    from radflow.io import image_file

    values = (_volume() + 1000).astype(np.float32)
    path = tmp_path / "mr.nii.gz"
    _nibabel_save(path, values, slope=2.0, inter=3.0)
    monkeypatch.setattr(image_file, "nib", None)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(path)), values * 2 + 3)


def test_nan_label_map_is_refused_not_read_as_background(tmp_path):
    labels = np.zeros((6, 7, 8), np.float32)
    labels[2:4, 2:4, 2:4] = 1
    labels[0, 0, 0] = np.nan
    path, reference = tmp_path / "gtv.nii.gz", tmp_path / "t1.nii.gz"
    _nibabel_save(path, labels)
    _nibabel_save(reference, _volume())
    with pytest.raises(InputError, match="label values must be integers, found nan"):
        read_label_map(path, read_image(reference))
