"""The volume store: exact round trips, OME-Zarr 0.5 metadata, chunk reads, atomic writes."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import zarr.storage

from radflow.errors import InputError
from radflow.io.image_file import read_image, read_label_map
from radflow.io.records import LabelMap
from radflow.store import layout, source, write
from radflow.store.catalogue import label_keys, list_series, series_fingerprint
from radflow.store.convert import to_sitk
from radflow.store.read import open_label, open_volume, read_box, roi_bbox
from radflow.store.write import write_series


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


#: Oblique (rotated about z then x) and flipped (determinant -1) direction.
OBLIQUE_FLIPPED = tuple(
    (_rotation(2, 30.0) @ _rotation(0, 20.0) @ np.diag([1.0, 1.0, -1.0])).ravel()
)
SPACING_XYZ = (0.6640625, 0.9765625, 2.5)
ORIGIN_XYZ = (-123.456789012345, 67.1, -3.0e-7)


def _image(array, *, spacing=SPACING_XYZ, origin=ORIGIN_XYZ, direction=OBLIQUE_FLIPPED):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def _ct(shape=(12, 24, 20), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1024, 3000, size=shape).astype(np.int16)


def _label(reference: sitk.Image, box, value=1, key="gtv", name="GTV") -> LabelMap:
    data = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
    data[box] = value
    image = sitk.GetImageFromArray(data)
    image.CopyInformation(reference)
    return LabelMap(key=key, source="labelmap", image=image, rois={value: name})


def _assert_same_image(actual: sitk.Image, expected: sitk.Image) -> None:
    assert actual.GetPixelID() == expected.GetPixelID()
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(actual), sitk.GetArrayViewFromImage(expected)
    )
    # Exact equality on purpose: the store must not perturb a single bit.
    assert actual.GetSize() == expected.GetSize()
    assert actual.GetSpacing() == expected.GetSpacing()
    assert actual.GetOrigin() == expected.GetOrigin()
    assert actual.GetDirection() == expected.GetDirection()


# -- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize(
    "array",
    [_ct(), np.random.default_rng(1).gamma(2.0, 1.5, size=(9, 16, 14)).astype(np.float32)],
    ids=["int16", "float32"],
)
def test_file_to_store_to_sitk_is_exact(tmp_path, suffix, array):
    path = tmp_path / f"image{suffix}"
    sitk.WriteImage(_image(array), str(path))
    image = read_image(path)
    labels_array = np.zeros(array.shape, np.uint8)
    labels_array[2:5, 3:9, 4:8] = 1
    labels_array[6:8, 10:12, 1:3] = 2
    label_path = tmp_path / f"gtv{suffix}"
    sitk.WriteImage(_image(labels_array), str(label_path))
    label = read_label_map(label_path, image, names={1: "GTV", 2: "node"})

    write_series(tmp_path / "store", "case1", "ct1", image, [label], fingerprint="f")

    stored = open_volume(tmp_path / "store", "case1", "ct1")
    assert stored.dtype == array.dtype
    _assert_same_image(to_sitk(stored), image)
    np.testing.assert_array_equal(stored.values, array)
    stored_label = open_label(tmp_path / "store", "case1", "ct1", "gtv")
    assert stored_label.dtype == np.uint8
    assert stored_label.attrs["rois"] == {1: "GTV", 2: "node"}
    _assert_same_image(to_sitk(stored_label), label.image)
    np.testing.assert_array_equal(stored_label.values, labels_array)


def test_geometry_doubles_round_trip_bit_exact(tmp_path):
    # Arbitrary doubles (no file format in between to round them first).
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    image = _image(
        _ct((5, 6, 7)),
        spacing=tuple(rng.uniform(0.1, 5.0, 3)),
        origin=tuple(rng.uniform(-500.0, 500.0, 3)),
        direction=tuple(q.ravel()),
    )
    write_series(tmp_path, "c", "s", image, fingerprint="f")
    _assert_same_image(to_sitk(open_volume(tmp_path, "c", "s")), image)


def test_crop_geometry_matches_simpleitk_slicing(tmp_path):
    image = _image(_ct())
    write_series(tmp_path, "c", "s", image, fingerprint="f")
    crop = open_volume(tmp_path, "c", "s").isel(z=slice(3, 9), y=slice(5, 20), x=slice(2, 11))
    # SimpleITK indexes (x, y, z); its slicing is the reference for the crop's origin.
    _assert_same_image(to_sitk(crop), image[2:11, 5:20, 3:9])


def test_to_sitk_rejects_strided_selection(tmp_path):
    write_series(tmp_path, "c", "s", _image(_ct()), fingerprint="f")
    with pytest.raises(ValueError, match="consecutive voxels"):
        to_sitk(open_volume(tmp_path, "c", "s").isel(z=slice(0, None, 2)))


def test_coordinates_and_attrs(tmp_path):
    image = _image(_ct())
    attrs = {"modality": "CT", "frame": "pseudo-frame-1"}
    write_series(tmp_path, "c", "s", image, attrs=attrs, fingerprint="sha-1")
    da = open_volume(tmp_path, "c", "s")
    assert da.name == "image" and da.dims == ("z", "y", "x")
    assert da.attrs["spacing_zyx"] == SPACING_XYZ[::-1]
    assert da.attrs["origin_zyx"] == ORIGIN_XYZ[::-1]
    assert da.attrs["direction_xyz"] == OBLIQUE_FLIPPED
    assert da.attrs["modality"] == "CT" and da.attrs["frame"] == "pseudo-frame-1"
    assert da.attrs["fingerprint"] == "sha-1"
    x_mm = ORIGIN_XYZ[0] + SPACING_XYZ[0] * np.arange(20)
    z_mm = ORIGIN_XYZ[2] + SPACING_XYZ[2] * np.arange(12)
    np.testing.assert_allclose(da.x.values, x_mm, rtol=0, atol=1e-9)
    np.testing.assert_allclose(da.z.values, z_mm, rtol=0, atol=1e-9)


def test_list_series_and_fingerprint(tmp_path):
    ct = _image(_ct())
    pet = _image(np.ones((4, 5, 6), np.float32))
    gtv = _label(ct, np.s_[1:3, 1:3, 1:3])
    write_series(tmp_path, "b", "ct", ct, [gtv], attrs={"modality": "CT"}, fingerprint="1")
    write_series(tmp_path, "a", "pt", pet, attrs={"modality": "PT"}, fingerprint="2")
    found = list_series(tmp_path)
    assert [(s.case, s.series, s.modality) for s in found] == [("a", "pt", "PT"), ("b", "ct", "CT")]
    assert found[1].shape_zyx == (12, 24, 20)
    assert found[1].spacing_zyx == SPACING_XYZ[::-1]
    assert found[1].label_keys == ("gtv",) and found[0].label_keys == ()
    assert series_fingerprint(tmp_path, "b", "ct") == "1"
    assert series_fingerprint(tmp_path, "b", "absent") is None
    assert label_keys(tmp_path, "b", "ct") == ["gtv"]


def test_labels_above_255_are_uint16(tmp_path):
    image = _image(_ct())
    data = np.zeros((12, 24, 20), np.uint16)
    data[2:4, 2:4, 2:4] = 300
    data[5, 5, 5] = 7
    atlas = sitk.GetImageFromArray(data)
    atlas.CopyInformation(image)
    labels = [LabelMap("atlas", "labelmap", atlas, {7: "a", 300: "b"})]
    write_series(tmp_path, "c", "s", image, labels, fingerprint="f")
    stored = open_label(tmp_path, "c", "s", "atlas")
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored.values, data)


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda im: im.SetOrigin((0.0, 0.0, 0.0)), "origin"),
        (lambda im: im.SetSpacing((1.0, 1.0, 1.0)), "spacing"),
        (lambda im: im.SetDirection((1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)), "direction"),
    ],
)
def test_label_off_the_image_grid_is_refused(tmp_path, change, reason):
    image = _image(_ct())
    label = _label(image, np.s_[1:3, 1:3, 1:3])
    change(label.image)
    with pytest.raises(InputError, match=rf"case1/s1: label 'gtv': geometry differs.*{reason}"):
        write_series(tmp_path, "case1", "s1", image, [label], fingerprint="f")
    assert not (tmp_path / "case1").exists() or list((tmp_path / "case1").iterdir()) == []


def test_bad_inputs_are_refused_before_writing(tmp_path):
    image = _image(_ct())
    empty = _label(image, np.s_[0:0, 0:0, 0:0])
    with pytest.raises(InputError, match="empty ROI"):
        write_series(tmp_path, "c", "s", image, [empty], fingerprint="f")
    twice = [_label(image, np.s_[1:2, 1:2, 1:2]), _label(image, np.s_[3:4, 3:4, 3:4])]
    with pytest.raises(InputError, match="duplicate label keys"):
        write_series(tmp_path, "c", "s", image, twice, fingerprint="f")
    with pytest.raises(ValueError, match="may not set"):
        write_series(tmp_path, "c", "s", image, attrs={"fingerprint": "x"}, fingerprint="f")
    with pytest.raises(ValueError, match="JSON"):
        write_series(tmp_path, "c", "s", image, attrs={"when": object()}, fingerprint="f")
    with pytest.raises(ValueError, match="series must be"):
        write_series(tmp_path, "c", "../s", image, fingerprint="f")
    with pytest.raises(InputError, match="3-D"):
        write_series(tmp_path, "c", "s", sitk.Image([4, 4], sitk.sitkInt16), fingerprint="f")
    assert series_fingerprint(tmp_path, "c", "s") is None
    with pytest.raises(InputError, match="no such series"):
        open_volume(tmp_path, "c", "s")


# -- OME-Zarr 0.5 metadata, checked on the raw zarr.json files --------------------


def _zarr_json(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())


def _check_multiscales(group: dict, group_path: Path) -> list:
    """Structural rules of OME-Zarr 0.5 ``multiscales``; returns the transforms of level 0."""
    assert group["zarr_format"] == 3 and group["node_type"] == "group"
    ome = group["attributes"]["ome"]
    assert ome["version"] == "0.5"
    (multiscale,) = ome["multiscales"]
    assert "version" not in multiscale  # 0.5 keeps the version in "ome" only
    axes = multiscale["axes"]
    assert [a["name"] for a in axes] == ["z", "y", "x"]
    assert all(a["type"] == "space" and a["unit"] == "millimeter" for a in axes)
    assert multiscale["datasets"], "at least one scale level"
    for dataset in multiscale["datasets"]:
        transforms = dataset["coordinateTransformations"]
        assert transforms[0]["type"] == "scale" and len(transforms[0]["scale"]) == len(axes)
        assert [t["type"] for t in transforms[1:]] in ([], ["translation"])
        assert all(len(t.get("translation", axes)) == len(axes) for t in transforms)
        array = _zarr_json(group_path / dataset["path"])
        assert array["zarr_format"] == 3 and array["node_type"] == "array"
        assert len(array["shape"]) == len(axes)
        assert array["dimension_names"] == ["z", "y", "x"]
        codecs = {c["name"]: c.get("configuration", {}) for c in array["codecs"]}
        assert "bytes" in codecs
        assert codecs["blosc"]["cname"] == "zstd" and codecs["blosc"]["shuffle"] == "shuffle"
    return multiscale["datasets"][0]["coordinateTransformations"]


def test_ome_zarr_metadata_is_valid_0_5(tmp_path):
    image = _image(_ct())
    labels = [
        _label(image, np.s_[1:3, 2:5, 3:6]),
        _label(image, np.s_[5:6, 5:6, 5:6], value=2, key="node", name="N1"),
    ]
    root = write_series(tmp_path, "c", "s", image, labels, fingerprint="f")

    group = _zarr_json(root)
    transforms = _check_multiscales(group, root)
    assert transforms == [
        {"type": "scale", "scale": list(SPACING_XYZ[::-1])},
        {"type": "translation", "translation": list(ORIGIN_XYZ[::-1])},
    ]
    assert group["attributes"]["radflow"]["direction_xyz"] == list(OBLIQUE_FLIPPED)
    image_array = _zarr_json(root / "0")
    assert image_array["data_type"] == "int16"
    assert image_array["chunk_grid"]["configuration"]["chunk_shape"] == [12, 24, 20]

    labels_group = _zarr_json(root / "labels")
    assert labels_group["zarr_format"] == 3 and labels_group["node_type"] == "group"
    assert labels_group["attributes"]["ome"] == {"version": "0.5", "labels": ["gtv", "node"]}
    for key, value, name in (("gtv", 1, "GTV"), ("node", 2, "N1")):
        label = _zarr_json(root / "labels" / key)
        assert _check_multiscales(label, root / "labels" / key) == transforms
        image_label = label["attributes"]["ome"]["image-label"]
        assert image_label["source"] == {"image": "../../"}
        assert image_label["properties"] == [{"label-value": value, "name": name}]
        array = _zarr_json(root / "labels" / key / "0")
        assert array["data_type"] == "uint8"
        assert array["chunk_grid"] == image_array["chunk_grid"]


def test_chunks_of_a_large_volume(tmp_path):
    image = _image(np.zeros((70, 130, 140), np.int16))
    root = write_series(tmp_path, "c", "s", image, fingerprint="f")
    chunk_shape = _zarr_json(root / "0")["chunk_grid"]["configuration"]["chunk_shape"]
    assert chunk_shape == [64, 128, 128]  # 2 MiB of int16


# -- chunk-level reads --------------------------------------------------------------


class CountingStore(zarr.storage.WrapperStore):
    """Records every key read through it."""

    def __init__(self, store, log: list):
        super().__init__(store)
        self.log = log

    def _with_store(self, store):
        return type(self)(store, self.log)

    async def get(self, key, prototype, byte_range=None):
        self.log.append(key)
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        self.log.extend(key for key, _ in key_ranges)
        return await self._store.get_partial_values(prototype, key_ranges)


@pytest.fixture
def chunked(tmp_path, monkeypatch):
    """A (12, 24, 24) series in (4, 8, 8) chunks with one ROI, and a log of chunk reads."""
    monkeypatch.setattr(write, "chunk_shape", lambda shape, itemsize: (4, 8, 8))
    array = _ct((12, 24, 24))
    image = _image(array)
    roi = np.s_[5:7, 9:15, 17:21]
    write_series(tmp_path, "c", "s", image, [_label(image, roi)], fingerprint="f")
    log = []
    monkeypatch.setattr(
        layout,
        "zarr_store",
        lambda path, read_only: CountingStore(
            zarr.storage.LocalStore(path, read_only=read_only), log
        ),
    )

    def chunk_reads():
        reads = {key for key in log if "/c/" in key}
        log.clear()
        return reads

    return tmp_path, array, roi, chunk_reads


def test_roi_bbox(chunked):
    store, array, roi, chunk_reads = chunked
    assert roi_bbox(store, "c", "s", "gtv") == roi
    assert roi_bbox(store, "c", "s", "gtv", label="GTV") == roi
    with pytest.raises(InputError, match="empty ROI"):
        roi_bbox(store, "c", "s", "gtv", label=2)
    with pytest.raises(InputError, match="no ROI named"):
        roi_bbox(store, "c", "s", "gtv", label="CTV")


def test_read_box_reads_only_the_covering_chunks(chunked):
    store, array, roi, chunk_reads = chunked
    chunk_reads()
    # z 4:8 lies in chunk 1; y 7:17 spans chunks 0, 1, 2; x 17:21 lies in chunk 2.
    box = read_box(store, "c", "s", roi, margin_zyx=(1, 2, 0))
    assert chunk_reads() == {"0/c/1/0/2", "0/c/1/1/2", "0/c/1/2/2"}
    np.testing.assert_array_equal(box.values, array[4:8, 7:17, 17:21])
    _assert_same_image(to_sitk(box), _image(array)[17:21, 7:17, 4:8])

    label = read_box(store, "c", "s", [(5, 7), (9, 15), (17, 21)], key="gtv")
    assert chunk_reads() == {"labels/gtv/0/c/1/1/2"}  # y 9:15 lies in chunk 1
    assert label.values.all() and label.attrs["rois"] == {1: "GTV"}


def test_read_box_margin_is_clipped_to_the_volume(chunked):
    store, array, roi, chunk_reads = chunked
    box = read_box(store, "c", "s", roi, margin_zyx=(30, 30, 30))
    np.testing.assert_array_equal(box.values, array)
    assert len(chunk_reads()) == 3 * 3 * 3
    with pytest.raises(ValueError, match="margin_zyx"):
        read_box(store, "c", "s", roi, margin_zyx=(-1, 0, 0))
    with pytest.raises(InputError, match="outside the volume"):
        read_box(store, "c", "s", (slice(20, 25), slice(0, 1), slice(0, 1)))


def test_open_volume_is_lazy(chunked):
    store, array, roi, chunk_reads = chunked
    chunk_reads()
    da = open_volume(store, "c", "s")
    assert chunk_reads() == set()
    assert da.chunks == ((4, 4, 4), (8, 8, 8), (8, 8, 8))
    first_slab = da.isel(z=slice(0, 4)).compute()
    assert chunk_reads() == {f"0/c/0/{j}/{i}" for j in range(3) for i in range(3)}
    np.testing.assert_array_equal(first_slab.values, array[:4])
    np.testing.assert_array_equal(da.values, array)
    assert len(chunk_reads()) == 27
    open_label(store, "c", "s", "gtv")
    assert chunk_reads() == set()


def test_box_image_reads_the_box_from_the_store_and_equals_to_sitk(chunked):
    store, array, roi, chunk_reads = chunked
    da = open_volume(store, "c", "s")
    assert source.stored(da) is not None
    chunk_reads()
    region = (slice(4, 8), slice(7, 17), slice(17, 21))
    image = source.box_image(da, region)
    assert chunk_reads() == {"0/c/1/0/2", "0/c/1/1/2", "0/c/1/2/2"}
    _assert_same_image(image, to_sitk(da.isel(z=region[0], y=region[1], x=region[2])))
    _assert_same_image(image, _image(array)[17:21, 7:17, 4:8])


def test_label_box_finds_the_roi(chunked):
    store, array, roi, chunk_reads = chunked
    label = open_label(store, "c", "s", "gtv")
    assert source.label_box(label, 1) == roi
    assert source.label_box(label) == roi
    assert source.label_box(label, 2) is None
    # Not the stored array (computed): the same answer through dask.
    assert source.stored(label + 0) is None
    assert source.label_box(label + 0, 1) == roi


def test_stored_array_only_for_the_unmodified_dataarray(chunked):
    store, array, roi, chunk_reads = chunked
    da = open_volume(store, "c", "s")
    assert source.stored(da) is source.stored(da.copy())
    for changed in (
        da.isel(z=slice(1, None)),
        da * 2,
        da.astype("float32"),
        da.chunk({"z": 2}),
        da.assign_coords(z=da.z + 5.0),
        da.compute(),
    ):
        assert source.stored(changed) is None
        region = (slice(0, 2), slice(0, 3), slice(0, 4))
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(source.box_image(changed, region)), changed.values[region]
        )


def test_store_records_whole_volume_summaries_and_roi_boxes(tmp_path):
    from radflow.store.summary import volume_summary

    array = _ct((12, 24, 24))
    image = _image(array)
    values = np.zeros(array.shape, np.uint8)
    values[5:7, 9:15, 17:21] = 1
    values[0:2, 0:3, 0:1] = 3
    label = sitk.GetImageFromArray(values)
    label.CopyInformation(image)
    write_series(
        tmp_path,
        "c",
        "s",
        image,
        [LabelMap("gtv", "labelmap", label, {1: "GTV", 3: "LN"})],
        fingerprint="f",
    )
    da, mask = open_volume(tmp_path, "c", "s"), open_label(tmp_path, "c", "s", "gtv")
    # What streaming the stored voxels gives, computed independently of the write.
    assert source.stored_summary(da, moments=True) == volume_summary(da.values, moments=True)
    assert source.stored_summary(mask, as_uint32=True) == volume_summary(
        mask.values, as_uint32=True
    )
    assert source.stored_summary(mask) is None and source.stored_summary(da, as_uint32=True) is None
    assert source.stored_summary(da + 1) is None  # not the stored voxels any more
    for value in (1, 3, None):
        assert source.label_box(mask, value) == source.nonzero_box(mask.values, value)
    assert source.label_box(mask, 2) is None
    assert source.label_box(mask, 1) == (slice(5, 7), slice(9, 15), slice(17, 21))


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ([np.nan], "NaN"),
        ([np.inf], "Infinity"),
        ([-np.inf], "-Infinity"),
        ([np.inf, -np.inf], "NaN"),
    ],
)
def test_non_finite_images_record_their_summary_as_json(tmp_path, bad, expected):
    # Issue 12: an infinite voxel made write_series fail; now the summary is kept, its
    # non-finite statistics as JSON text, read back as the floats NumPy gives.
    from radflow.store.summary import volume_summary

    array = _ct((4, 6, 6)).astype(np.float32)
    array.flat[[7, 30][: len(bad)]] = bad
    write_series(tmp_path, "c", "s", _image(array), fingerprint="f", attrs={"top": float(bad[0])})
    stored = json.loads((tmp_path / "c" / "s" / "zarr.json").read_text())["attributes"]["radflow"]
    assert stored["summary"]["mean"] == expected and stored["summary"]["nonfinite"] == len(bad)
    assert float(stored["top"]) == bad[0] or np.isnan(bad[0])  # attrs: "NaN", "Infinity", ...
    da = open_volume(tmp_path, "c", "s")
    recorded, streamed = (
        source.stored_summary(da, moments=True),
        volume_summary(array, moments=True),
    )
    assert recorded.keys() == streamed.keys() and recorded["nonfinite"] == len(bad)
    for key, value in streamed.items():
        assert recorded[key] == value or (np.isnan(value) and np.isnan(recorded[key])), key
    assert volume_summary(_ct((4, 6, 6)))["nonfinite"] == 0


def test_roi_source_is_what_an_extraction_reads(chunked):
    from radflow.store.summary import volume_summary

    store, array, roi, chunk_reads = chunked
    da, mask = open_volume(store, "c", "s"), open_label(store, "c", "s", "gtv")
    pair = source.roi_source(da, mask)
    assert pair.shape_zyx == array.shape and pair.mask_name == "c/s/gtv"
    assert pair.label_box(1) == roi and pair.label_box(2) is None
    chunk_reads()
    image, labels = pair.read(roi)
    assert chunk_reads() == {"0/c/1/1/2", "labels/gtv/0/c/1/1/2"}  # the box's chunks only
    _assert_same_image(image, to_sitk(da.isel(z=roi[0], y=roi[1], x=roi[2])))
    _assert_same_image(labels, to_sitk(mask.isel(z=roi[0], y=roi[1], x=roi[2])))
    expected_hash = volume_summary(mask.values, as_uint32=True)["hash"]
    chunk_reads()
    assert pair.image_summary(moments=True) == volume_summary(array, moments=True)
    assert pair.mask_hash() == expected_hash
    assert chunk_reads() == set()  # recorded at write time
    # A DataArray of the store survives pickling with its zarr array (another process).
    assert source.stored(pickle.loads(pickle.dumps(da))) is not None
    with pytest.raises(InputError, match="not on the grid of the image"):
        source.roi_source(da, mask.isel(z=slice(1, None)))


# -- damaged chunks (issue 12) ----------------------------------------------------------


@pytest.fixture
def damaged(tmp_path, monkeypatch):
    """A (12, 24, 24) series in (4, 8, 8) chunks: a chunk of zeros, two ROIs far apart."""
    monkeypatch.setattr(write, "chunk_shape", lambda shape, itemsize: (4, 8, 8))
    array = _ct((12, 24, 24))
    array[8:12, 16:24, 0:8] = 0  # chunk (2, 2, 0): zarr writes no file for it
    image = _image(array)
    values = np.zeros(array.shape, np.uint8)
    values[1:3, 1:7, 1:7] = 1  # inside chunk (0, 0, 0)
    values[9:11, 17:23, 17:23] = 2  # inside chunk (2, 2, 2)
    label = sitk.GetImageFromArray(values)
    label.CopyInformation(image)
    write_series(
        tmp_path,
        "c",
        "s",
        image,
        [LabelMap("gtv", "labelmap", label, {1: "A", 2: "B"})],
        fingerprint="f",
    )
    return tmp_path, array


def _flat(index) -> int:
    return int(np.ravel_multi_index(index, (3, 3, 3)))


def test_written_chunks_are_recorded_and_zero_chunks_read_as_zeros(damaged):
    store, array = damaged
    series = store / "c" / "s"
    image_meta = json.loads((series / "0" / "zarr.json").read_text())["attributes"]["radflow"]
    everything_but_zeros = [[0, _flat((2, 2, 0))], [_flat((2, 2, 0)) + 1, 27]]
    assert image_meta["chunks_written"] == everything_but_zeros
    label_meta = json.loads((series / "labels" / "gtv" / "0" / "zarr.json").read_text())
    assert label_meta["attributes"]["radflow"]["chunks_written"] == [[0, 1], [26, 27]]
    # Chunks never written (zeros) are no damage.
    np.testing.assert_array_equal(open_volume(store, "c", "s").values, array)
    np.testing.assert_array_equal(
        read_box(store, "c", "s", [(0, 12), (0, 24), (0, 24)], key="gtv").values[1:3, 1:7, 1:7], 1
    )


def test_a_missing_chunk_file_is_an_error_naming_the_series_and_the_chunk(damaged):
    from radflow.store.chunks import DamagedChunkError

    store, array = damaged
    series = store / "c" / "s"
    (series / "0" / "c" / "0" / "0" / "0").unlink()
    pair = source.roi_source(open_volume(store, "c", "s"), open_label(store, "c", "s", "gtv"))
    message = r"0/c/0/0/0: chunk \(0, 0, 0\) of the image of series c/s is missing on disk"
    with pytest.raises(DamagedChunkError, match=message):
        pair.read(pair.label_box(1))
    with pytest.raises(DamagedChunkError, match=message):
        read_box(store, "c", "s", [(1, 3), (1, 7), (1, 7)])
    with pytest.raises(DamagedChunkError, match=message):
        open_volume(store, "c", "s").compute()  # through dask too
    with pytest.raises(DamagedChunkError, match=message):
        pickle.loads(pickle.dumps(open_volume(store, "c", "s")))[0:2].compute()
    # The other ROI's chunks are whole: read as written.
    image, _ = pair.read(pair.label_box(2))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), array[9:11, 17:23, 17:23])

    (series / "labels" / "gtv" / "0" / "c" / "2" / "2" / "2").unlink()
    with pytest.raises(
        DamagedChunkError,
        match=r"labels/gtv/0/c/2/2/2: chunk \(2, 2, 2\) of the label map 'gtv' of series c/s",
    ):
        pair.read(pair.label_box(2))


@pytest.mark.parametrize(
    "damage", [lambda b: b"\x00garbage" * 8, lambda b: b[: len(b) // 2], lambda b: b""]
)
def test_a_corrupt_chunk_file_is_an_error_naming_the_series_and_the_file(damaged, damage):
    from radflow.store.chunks import DamagedChunkError

    store, _ = damaged
    chunk = store / "c" / "s" / "0" / "c" / "1" / "1" / "1"
    chunk.write_bytes(damage(chunk.read_bytes()))
    # A box over eight chunks: the message names the one that cannot be decoded.
    with pytest.raises(DamagedChunkError) as caught:
        read_box(store, "c", "s", [(2, 6), (6, 10), (6, 10)])
    assert caught.value.source == str(chunk)
    assert "chunk (1, 1, 1) of the image of series c/s cannot be decoded" in str(caught.value)
    # Blosc decodes a truncated chunk into garbage without an error: the checksum catches it.
    assert "checksum does not match" in str(caught.value)


def test_chunk_record_is_checked_and_optional(damaged):
    store, array = damaged
    meta_file = store / "c" / "s" / "0" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"]["radflow"]["chunks_written"] = [[0, 99]]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"chunks_written: bad run \[0, 99\] for 27 chunks"):
        open_volume(store, "c", "s")
    # Written before the record existed: read as before (a missing chunk cannot be told).
    del meta["attributes"]["radflow"]
    meta_file.write_text(json.dumps(meta))
    np.testing.assert_array_equal(open_volume(store, "c", "s").values, array)


# -- atomic writes ---------------------------------------------------------------------


def test_rewrite_replaces_the_series(tmp_path):
    image = _image(_ct())
    write_series(tmp_path, "c", "s", image, [_label(image, np.s_[1:3, 1:3, 1:3])], fingerprint="v1")
    new = _image(_ct(seed=2))
    write_series(tmp_path, "c", "s", new, fingerprint="v2")
    assert series_fingerprint(tmp_path, "c", "s") == "v2"
    np.testing.assert_array_equal(open_volume(tmp_path, "c", "s").values, _ct(seed=2))
    assert label_keys(tmp_path, "c", "s") == []
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["s"]


def test_exception_midway_keeps_the_old_version(tmp_path, monkeypatch):
    old = _image(_ct())
    write_series(tmp_path, "c", "s", old, fingerprint="v1")
    write_level = write._write_level

    def fail_after_image(group, data, chunks):
        write_level(group, data, chunks)
        raise OSError("disk full")

    monkeypatch.setattr(write, "_write_level", fail_after_image)
    with pytest.raises(OSError, match="disk full"):
        write_series(tmp_path, "c", "s", _image(_ct(seed=3)), fingerprint="v2")
    assert series_fingerprint(tmp_path, "c", "s") == "v1"
    np.testing.assert_array_equal(open_volume(tmp_path, "c", "s").values, _ct())
    assert [s.series for s in list_series(tmp_path)] == ["s"]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["s"]


def test_killed_writer_leaves_nothing_visible(tmp_path):
    # A real process killed in the middle of writing the labels (os._exit: no cleanup runs).
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np, SimpleITK as sitk
        from radflow.io.records import LabelMap
        from radflow.store import write
        write_level = write._write_level
        def die_on_labels(group, data, chunks):
            if data.dtype == np.uint8:
                os._exit(9)
            write_level(group, data, chunks)
        write._write_level = die_on_labels
        image = sitk.GetImageFromArray(np.ones((4, 5, 6), np.int16))
        label = sitk.GetImageFromArray(np.ones((4, 5, 6), np.uint8))
        write.write_series({str(tmp_path)!r}, "c", "s", image,
                            [LabelMap("gtv", "labelmap", label, {{1: "GTV"}})], fingerprint="v1")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 9, result.stderr
    leftovers = [p.name for p in (tmp_path / "c").iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".s.tmp-")
    assert list_series(tmp_path) == []
    assert series_fingerprint(tmp_path, "c", "s") is None
    with pytest.raises(InputError, match="no such series"):
        open_volume(tmp_path, "c", "s")

    # A stale replaced version too, as a kill between the two renames leaves it.
    (tmp_path / "c" / ".s.old-123-abcd").mkdir()
    (tmp_path / "c" / ".other.tmp-1-ab").mkdir()  # another series' write in progress
    write_series(tmp_path, "c", "s", _image(_ct()), fingerprint="v2")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [".other.tmp-1-ab", "s"]
    assert [(s.series, s.attrs["fingerprint"]) for s in list_series(tmp_path)] == [("s", "v2")]
