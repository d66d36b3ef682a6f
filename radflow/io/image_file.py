"""Plain image files: NIfTI, NRRD and MetaImage volumes and label maps.

SimpleITK reads all three and returns the geometry in ITK's LPS convention
(NIfTI's RAS affine is converted by ITK), which is what the store keeps.

ITK's NIfTI reader (niftilib) sets every NaN or infinite voxel of a float NIfTI
file to 0 (then applies ``scl_slope``/``scl_inter``), without a word; NRRD and
MetaImage keep them. :func:`read_image` therefore reads the raw voxels of a float
NIfTI file again with nibabel and puts the file's NaN and infinities back, so that
every format gives the values the file holds (an ROI containing them is then an
error of the extraction, not a silent 0).

:func:`prefetch` starts reading files in background threads (SimpleITK releases the
GIL while it reads), so that a command can import and validate while its inputs are
read; :func:`read_image` then takes the result instead of reading again.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import threading
import warnings
import zlib
from itertools import product
from os import PathLike
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow._lazy import load
from radflow.errors import InputError
from radflow.io.records import LabelMap, roi_key

# Loaded only for float NIfTI files (its import costs ~0.15 s of `radflow extract`'s start-up).
nib = load("nibabel")

#: File name endings read here -> (ITK image IO, format name for messages).
FORMATS = {
    ".nii.gz": ("NiftiImageIO", "NIfTI"),
    ".nii": ("NiftiImageIO", "NIfTI"),
    ".nrrd": ("NrrdImageIO", "NRRD"),
    ".nhdr": ("NrrdImageIO", "NRRD"),
    ".mha": ("MetaImageIO", "MetaImage"),
    ".mhd": ("MetaImageIO", "MetaImage"),
}


def image_suffix(path: str | PathLike) -> str | None:
    """The supported ending of ``path`` (``".nii.gz"``, ``".nrrd"``, ...), or None."""
    name = Path(path).name.lower()
    return next((suffix for suffix in FORMATS if name.endswith(suffix)), None)


def file_stem(path: str | PathLike) -> str:
    """The file name without its image ending: ``gtv.nii.gz`` -> ``gtv``."""
    name = Path(path).name
    suffix = image_suffix(name)
    return name[: -len(suffix)] if suffix else Path(name).stem


def label_sidecar(path: str | PathLike) -> Path:
    """The optional ROI-name file of a label map: ``gtv.nii.gz`` -> ``gtv.json``."""
    return Path(path).with_name(f"{file_stem(path)}.json")


def _itk_reason(err: RuntimeError) -> str:
    """The useful part of an ITK reader exception, on one line."""
    text = str(err)
    match = re.search(r"ERROR: \w+\(0x[0-9a-fA-F]+\): (.*)", text, re.S)
    lines = [line.strip() for line in (match.group(1) if match else text).splitlines()]
    # MetaIO appends errno ("Reason: Success", or a stale "No such file"): noise.
    lines = [line for line in lines if line and not line.startswith("Reason:")]
    nrrd = [line for line in lines if line.startswith("[nrrd]")]  # teem's trace: last = cause
    return nrrd[-1] if nrrd else " ".join(lines)


def _check_nifti_header(path: Path) -> None:
    """Refuse a file whose first field is not a NIfTI-1 or NIfTI-2 header size.

    Checked before ITK sees the file: ITK's NIfTI library prints its own complaint about such
    a file straight to the process's standard error, beside radflow's one-line message.
    """
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as stream:
            head = stream.read(4)
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(path, f"unreadable NIfTI file: corrupt gzip stream ({err})") from None
    sizes = (
        {int.from_bytes(head, "little"), int.from_bytes(head, "big")} if len(head) == 4 else set()
    )
    if not sizes & {348, 540}:
        raise InputError(path, "unreadable NIfTI file: no NIfTI-1 or NIfTI-2 header")


def _nifti_sizes(path: Path, reader: sitk.ImageFileReader) -> tuple[int, int]:
    """(bytes the NIfTI header announces, bytes the file holds), uncompressed.

    ITK zero-fills the voxels missing from a truncated NIfTI without an
    error, so the length is checked here. For .nii.gz the gzip trailer's
    length (modulo 2**32) is trusted when it agrees; otherwise the stream is
    decompressed to count.
    """
    ndim = int(reader.GetMetaData("dim[0]"))
    voxels = int(np.prod([int(reader.GetMetaData(f"dim[{i}]")) for i in range(1, ndim + 1)]))
    header_bytes = int(float(reader.GetMetaData("vox_offset")))
    expected = header_bytes + voxels * int(reader.GetMetaData("bitpix")) // 8
    if not path.name.lower().endswith(".gz"):
        return expected, path.stat().st_size
    with open(path, "rb") as stream:
        stream.seek(-4, 2)
        if int.from_bytes(stream.read(4), "little") == expected % 2**32:
            return expected, expected
    held = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                held += len(chunk)
    except EOFError:
        pass  # truncated stream: ``held`` is what could be read
    except (OSError, zlib.error) as err:
        raise InputError(path, f"unreadable NIfTI file: corrupt gzip stream ({err})") from None
    return expected, held


def _meta_float(reader: sitk.ImageFileReader, key: str) -> float:
    """A numeric header field ITK reports; 0 when absent or not a finite number."""
    try:
        value = float(reader.GetMetaData(key)) if reader.HasMetaDataKey(key) else 0.0
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0


#: NIfTI ``datatype`` codes of float voxels (FLOAT32, FLOAT64, FLOAT128), as ITK reports them.
_NIFTI_FLOAT_TYPES = frozenset({"16", "64", "1536"})


def _nifti_non_finite(path: Path, image: sitk.Image, intercept: float) -> sitk.Image:
    """``image`` as ITK read the NIfTI ``path``, with the file's NaN and infinities restored.

    ITK zeroes non-finite voxels of float NIfTI data, then scales them: they come
    out as 0 or as the header's ``scl_inter`` (``intercept``). Unless no voxel has
    either value, the raw voxels are read with nibabel and, where they are not
    finite, scaled by the header's slope and intercept (as ITK scales the others)
    and written back. Called for float data only: integer data (scaled or not)
    cannot hold them.
    """
    view = sitk.GetArrayViewFromImage(image)
    if not ((view == 0).any() or (view == view.dtype.type(intercept)).any()):
        return image
    try:
        nifti = nib.load(path)
        raw = np.asanyarray(nifti.dataobj.get_unscaled())
    except (OSError, ValueError, EOFError, zlib.error, nib.filebasedimages.ImageFileError) as err:
        raise InputError(
            path, f"unreadable NIfTI file: cannot check its voxels for NaN or infinity ({err})"
        ) from None
    bad = ~np.isfinite(raw)
    if not bad.any():
        return image
    values = sitk.GetArrayFromImage(image)
    if raw.ndim < 3 or any(n != 1 for n in raw.shape[3:]) or raw.shape[2::-1] != values.shape:
        raise InputError(
            path,
            f"NIfTI voxel array {raw.shape} does not match ITK's {values.shape[::-1]}: "
            "cannot restore its NaN or infinite voxels",
        )
    bad = bad.reshape(raw.shape[:3]).transpose(2, 1, 0)  # (x, y, z) file order -> (z, y, x)
    raw = raw.reshape(raw.shape[:3]).transpose(2, 1, 0)
    slope, inter = float(nifti.dataobj.slope), float(nifti.dataobj.inter)
    with np.errstate(invalid="ignore", over="ignore"):
        values[bad] = (raw[bad].astype(np.float64) * slope + inter).astype(values.dtype)
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    return out


class _Prefetch(threading.Thread):
    """One file read by :func:`read_image` in the background, with the file's identity then."""

    def __init__(self, path: Path):
        # Not a daemon: the interpreter waits for it at exit instead of finalising
        # SimpleITK's globals under a read still in progress.
        super().__init__(name=f"radflow-prefetch-{path.name}")
        self.path = path
        self.identity = _identity(path)
        self.image: sitk.Image | None = None

    def run(self) -> None:
        try:
            self.image = _read_image(self.path)
        except Exception:  # the caller's own read meets the error again and reports it
            self.image = None


#: Absolute path -> its read in progress (see :func:`prefetch`).
_prefetched: dict[Path, _Prefetch] = {}
_prefetched_lock = threading.Lock()


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime) of `path`, None if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class Prefetched:
    """The reads :func:`prefetch` started; closing it forgets those not taken yet.

    A context manager: ``with prefetch(image, mask): ...`` drops, on leaving, the images of
    reads that no :func:`read_image` took (a command that failed before reading its input),
    so a process that goes on (tests, a notebook calling the command line) does not keep them.
    """

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def close(self) -> None:
        with _prefetched_lock:
            for path in self.paths:
                _prefetched.pop(path, None)

    def __enter__(self) -> Prefetched:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def prefetch(*paths: str | PathLike) -> Prefetched:
    """Start reading image files in background threads, for a later :func:`read_image`.

    A command calls this as soon as it knows its inputs, then imports and checks what it
    needs while SimpleITK reads (it releases the GIL) on another core. The next
    :func:`read_image` of the same path waits for that read and takes its image, once,
    when the file is still the one read (same inode, size and modification time);
    otherwise, or when the background read failed, it reads the file itself, so results
    and error messages are those of a plain read. Paths that are not image files are
    ignored.

    Parameters
    ----------
    *paths : str or path-like
        Image files (:data:`FORMATS`).

    Returns
    -------
    Prefetched
        Close it (or use it as a context manager) when the reads are no longer wanted.
    """
    started = []
    for path in paths:
        path = Path(path).absolute()
        if image_suffix(path) is None or not path.is_file():
            continue
        with _prefetched_lock:
            if path in _prefetched:
                continue
            _prefetched[path] = read = _Prefetch(path)
        read.start()
        started.append(path)
    return Prefetched(started)


def _take_prefetched(path: Path) -> sitk.Image | None:
    if not _prefetched:
        return None
    with _prefetched_lock:
        read = _prefetched.pop(path.absolute(), None)
    if read is None:
        return None
    read.join()
    if read.image is None or read.identity is None or _identity(path) != read.identity:
        return None
    return read.image


def read_image(path: str | PathLike) -> sitk.Image:
    """Read a 3-D scalar NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) or MetaImage (.mha, .mhd).

    Parameters
    ----------
    path : str or path-like
        The image file; the format is chosen by its ending, never guessed.

    Returns
    -------
    SimpleITK.Image
        Voxels in the file's type (NIfTI scaling applied by ITK), spacing and
        origin in mm, direction in LPS. NaN and infinite voxels as the file
        holds them, in every format (ITK alone zeroes them in NIfTI files).

    Raises
    ------
    radflow.errors.InputError
        Unsupported ending, missing or unreadable file, not 3-D, or more than
        one value per voxel.
    """
    path = Path(path)
    image = _take_prefetched(path)
    return _read_image(path) if image is None else image


def _read_image(path: Path) -> sitk.Image:
    suffix = image_suffix(path)
    if suffix is None:
        raise InputError(path, f"unsupported file type; expected one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise InputError(path, "no such file")
    image_io, format_name = FORMATS[suffix]
    if format_name == "NIfTI":
        _check_nifti_header(path)
    reader = sitk.ImageFileReader()
    reader.SetImageIO(image_io)
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        datatype = reader.GetMetaData("datatype") if reader.HasMetaDataKey("datatype") else ""
        float_nifti = format_name == "NIfTI" and datatype in _NIFTI_FLOAT_TYPES
        intercept = _meta_float(reader, "scl_inter")
        if format_name == "NIfTI":
            expected, held = _nifti_sizes(path, reader)
            if held < expected:
                raise InputError(
                    path, f"unreadable NIfTI file: truncated, {held} of {expected} bytes"
                )
        image = reader.Execute()
    except RuntimeError as err:
        raise InputError(path, f"unreadable {format_name} file: {_itk_reason(err)}") from None
    if image.GetDimension() != 3:
        raise InputError(path, f"expected a 3-D image, got {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            path,
            f"expected one value per voxel, got {image.GetNumberOfComponentsPerPixel()} "
            "(vector or RGB image)",
        )
    if float_nifti:
        image = _nifti_non_finite(path, image, intercept)
    return image


def _read_names(sidecar: Path) -> dict[int, str]:
    try:
        raw = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(sidecar, f"unreadable ROI name file: {err}") from None
    if not isinstance(raw, dict):
        raise InputError(sidecar, 'expected an object {"1": "GTV", ...}')
    names = {}
    for value, name in raw.items():
        if not re.fullmatch(r"[1-9][0-9]*", value) or not isinstance(name, str) or not name.strip():
            raise InputError(
                sidecar, f"entry {value!r}: {name!r} must map a positive label value to a name"
            )
        names[int(value)] = name
    return names


def _corner_shift_mm(a: sitk.Image, b: sitk.Image) -> float:
    """Largest distance in mm between the same corner voxel of two same-size grids.

    Both grids are affine in the index, so the largest displacement of any
    voxel is at a corner: one number covers spacing, origin and direction.
    """
    corners = product(*[(0, n - 1) for n in a.GetSize()])
    return max(
        math.dist(a.TransformIndexToPhysicalPoint(c), b.TransformIndexToPhysicalPoint(c))
        for c in corners
    )


def read_label_map(
    path: str | PathLike,
    reference: sitk.Image,
    *,
    names: dict[int, str] | None = None,
    tolerance_mm: float = 1e-3,
    reference_source: str | PathLike | None = None,
) -> LabelMap:
    """Read an integer label map file on the grid of an image.

    Parameters
    ----------
    path : str or path-like
        NIfTI, NRRD or MetaImage file with one integer label value per ROI
        (0 = background). Float files are accepted when every value is an
        integer.
    reference : SimpleITK.Image
        The image the labels belong to; the label map must lie on its grid.
    names : dict of int to str, optional
        Label value -> ROI name. By default read from the sidecar
        ``<stem>.json`` beside the file (``{"1": "GTV", "2": "node"}``) when
        it exists. Values without a name are called ``<stem>`` (single
        label) or ``<stem>_<value>``.
    tolerance_mm : float, optional
        Largest allowed distance between a corner voxel's position in the
        label map and in the reference, in mm.
    reference_source : str or path-like, optional
        The reference image's file, named in geometry errors.

    Returns
    -------
    LabelMap
        ``key`` = ``roi_key(<stem>)``, ``source`` = ``"labelmap"``, image in
        uint8 (uint16 above 255) carrying exactly the reference's geometry,
        ``rois`` for the values present.

    Raises
    ------
    radflow.errors.InputError
        Unreadable file or sidecar, non-integer or negative values, values
        above 65535, "geometry mismatch" (size, or positions beyond
        ``tolerance_mm``), or "empty ROI" (no nonzero voxel).

    Warns
    -----
    UserWarning
        When ``names`` or the sidecar names a value no voxel has.
    """
    if not isinstance(reference, sitk.Image):
        raise TypeError(f"reference must be a SimpleITK.Image, got {type(reference).__name__}")
    if not tolerance_mm >= 0:
        raise ValueError(f"tolerance_mm must be >= 0, got {tolerance_mm}")
    path = Path(path)
    stem = file_stem(path)
    if names is None:
        sidecar = label_sidecar(path)
        names = _read_names(sidecar) if sidecar.is_file() else {}
    elif not all(isinstance(v, int) and isinstance(n, str) for v, n in names.items()):
        raise ValueError(f"names must map int label values to str, got {names!r}")

    image = read_image(path)
    ref_name = str(reference_source) if reference_source is not None else "the reference image"
    if image.GetSize() != reference.GetSize():
        raise InputError(
            path,
            f"geometry mismatch with {ref_name}: size {image.GetSize()} vs {reference.GetSize()}",
        )
    shift = _corner_shift_mm(image, reference)
    if shift > tolerance_mm:
        raise InputError(
            path,
            f"geometry mismatch with {ref_name}: voxel positions differ by up to {shift:.4g} mm "
            f"(tolerance {tolerance_mm} mm); spacing {image.GetSpacing()} vs "
            f"{reference.GetSpacing()}, origin {image.GetOrigin()} vs {reference.GetOrigin()}, "
            f"direction {image.GetDirection()} vs {reference.GetDirection()}",
        )

    data = sitk.GetArrayViewFromImage(image)
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data) | (data != np.round(data))
        if bad.any():
            raise InputError(path, f"label values must be integers, found {data[bad][0]}")
    low, high = data.min(), data.max()
    if low < 0:
        raise InputError(path, f"label values must be >= 0, found {low}")
    if high > np.iinfo(np.uint16).max:
        raise InputError(path, f"label value {high} is above 65535")
    labels = data.astype(np.uint8 if high <= np.iinfo(np.uint8).max else np.uint16)
    present = np.flatnonzero(np.bincount(labels.ravel()))
    present = [int(v) for v in present if v != 0]
    if not present:
        raise InputError(path, "empty ROI: no nonzero voxel")
    absent = sorted(set(names) - set(present))
    if absent:
        warnings.warn(
            f"{path}: ROIs {[names[v] for v in absent]} (values {absent}) have no voxel; skipped",
            stacklevel=2,
        )
    default = (lambda v: stem) if len(present) == 1 else (lambda v: f"{stem}_{v}")
    rois = {v: names.get(v, default(v)) for v in present}

    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(reference)
    return LabelMap(key=roi_key(stem), source="labelmap", image=out, rois=rois)
