"""Background reads (:func:`radflow.io.image_file.prefetch`) give what a plain read gives."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli import main
from radflow.errors import InputError
from radflow.io import image_file
from radflow.io.image_file import prefetch, read_image


def _write(path, values, spacing=(0.7, 0.8, 2.5)):
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    image.SetOrigin((-10.0, 5.0, 3.0))
    sitk.WriteImage(image, str(path))
    return path


def _same(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()
    assert a.GetDirection() == b.GetDirection()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
    assert a.GetPixelID() == b.GetPixelID()


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    ct = _write(tmp_path / "ct.nii.gz", rng.integers(-1000, 1000, (12, 40, 50)).astype(np.int16))
    pet = rng.random((12, 40, 50)).astype(np.float32)
    pet[3, 4, 5] = np.nan  # float NIfTI: the non-finite voxels are put back after ITK's read
    pet = _write(tmp_path / "pet.nii.gz", pet)
    mask = _write(tmp_path / "mask.nrrd", (rng.random((12, 40, 50)) > 0.5).astype(np.uint8))
    return ct, pet, mask


def test_prefetched_reads_equal_plain_reads(files):
    plain = [read_image(p) for p in files]
    for _ in range(5):  # several concurrent reads of several formats
        prefetch(*files)
        for path, expected in zip(files, plain, strict=True):
            _same(read_image(path), expected)
        assert not image_file._prefetched
    assert np.isnan(sitk.GetArrayViewFromImage(read_image(files[1]))[3, 4, 5])


def test_a_prefetched_image_is_taken_once(files, monkeypatch):
    ct = files[0]
    prefetch(ct)
    first = read_image(ct)
    calls = []
    real = image_file._read_image
    monkeypatch.setattr(image_file, "_read_image", lambda p: calls.append(p) or real(p))
    second = read_image(ct)  # read again from the file, not the prefetched object
    assert calls == [ct] and second is not first
    _same(first, second)


def test_a_file_changed_after_the_prefetch_is_read_again(files, monkeypatch):
    ct = files[0]
    monkeypatch.setattr(image_file, "_identity", lambda path: (0, 0, 0, 0))
    prefetch(ct)
    monkeypatch.undo()  # now the file's identity differs from the one prefetched
    calls = []
    real = image_file._read_image
    monkeypatch.setattr(image_file, "_read_image", lambda p: calls.append(p) or real(p))
    _same(read_image(ct), real(ct))
    assert calls == [ct]


def test_errors_are_those_of_a_plain_read(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti file")
    prefetch(bad, tmp_path / "missing.nrrd", tmp_path / "notes.txt")
    with pytest.raises(InputError) as prefetched:
        read_image(bad)
    with pytest.raises(InputError) as plain:
        read_image(bad)
    assert str(prefetched.value) == str(plain.value) and "bad.nii.gz" in str(plain.value)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.nrrd")
    assert not image_file._prefetched  # only the image file that exists was started


def test_relative_and_absolute_paths_are_the_same_file(files, monkeypatch):
    ct = files[0]
    monkeypatch.chdir(ct.parent)
    prefetch(ct.name)
    assert list(image_file._prefetched) == [ct]
    _same(read_image(os.fspath(ct)), read_image(ct))


def test_closing_forgets_the_reads_not_taken(files):
    with prefetch(*files[:2]) as reads:
        read_image(files[0])
    assert reads.paths == [files[0], files[1]]
    assert not image_file._prefetched


def test_a_command_that_fails_before_reading_keeps_nothing(files, tmp_path):
    params = tmp_path / "bad.yaml"
    params.write_text("setting:\n  binWidth: -1\n")
    assert main(["extract", str(files[0]), str(files[2]), "-p", str(params)]) == 2
    assert not image_file._prefetched
