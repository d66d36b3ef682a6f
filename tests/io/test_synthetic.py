"""The synthetic demo archive: layout, readability, ground truth, determinism, signal.

Expected values come from outside the generator: exact geometry (voxel
counts of contours rasterised here with skimage), the SUV formula applied by
hand to the DICOM tags, physical tissue values, and survival statistics
(Harrell's C by brute-force pair count, the exponential law of the
cumulative hazard at the event time).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage, stats
from skimage.draw import polygon

from radflow.cli import main as radflow_main
from radflow.demo import archive as demo_archive
from radflow.demo import synthetic
from radflow.demo.archive import archive_parameters
from radflow.demo.synthetic import draw_cohort, draw_patient, write_demo_archive
from radflow.errors import InputError, SettingsError

SEED = 1  # its first three patients cover both anatomies (neck, thorax, neck)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_demo_archive(tmp_path_factory.mktemp("demo") / "archive", patients=3, seed=SEED)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _rasterise(rtstruct: Path, roi: str, image: sitk.Image) -> np.ndarray:
    """Even-odd fill of the ROI's contours by pixel centre on the image grid (z, y, x)."""
    ds = pydicom.dcmread(rtstruct)
    number = next(r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == roi)
    item = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == number)
    mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=bool)
    for contour in item.ContourSequence:
        xyz = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        idx = np.array([image.TransformPhysicalPointToContinuousIndex(p) for p in xyz])
        k = int(round(idx[0, 2]))
        rr, cc = polygon(idx[:, 1], idx[:, 0], mask.shape[1:])
        mask[k, rr, cc] ^= True
    return mask


# ------------------------------------------------------------------ layout and content


def test_layout_and_tables(archive):
    root = archive.root
    assert {p.name for p in root.iterdir()} == {
        "clinical.csv",
        "genomic.csv",
        "outcomes.csv",
        "truth.json",
        "archive.json",
        "INST_A",
        "INST_B",
        "INST_C",
    }
    assert not list(root.parent.glob(".*tmp*")), "temporary folder left behind"
    assert archive_parameters(root) == {
        "patients": len(archive.patients),
        "seed": archive.truth["seed"],
        "institutions": len(archive.institutions),
    }
    assert archive_parameters(root / "INST_A") is None
    clinical = _rows(archive.clinical_csv)
    assert list(clinical[0]) == [
        "patient",
        "institution",
        "age",
        "sex",
        "smoking",
        "hpv",
        "primary_site",
        "stage",
    ]
    assert list(_rows(archive.genomic_csv)[0]) == [
        "patient",
        "TP53",
        "KRAS",
        "EGFR",
        "PIK3CA",
        "CDKN2A",
    ]
    assert list(_rows(archive.outcomes_csv)[0]) == ["patient", "os_months", "os_event"]
    assert [r["patient"] for r in clinical] == list(archive.patients) == ["A0001", "B0001", "C0001"]
    for row in clinical:
        pdir = root / row["institution"] / row["patient"]
        assert sorted(p.name for p in pdir.iterdir()) == ["CT", "MR", "PET", "RTSTRUCT"]
        assert sorted(p.name for p in (pdir / "MR").iterdir()) == [
            "t1.nii.gz",
            "t1_label.json",
            "t1_label.nii.gz",
        ]
        assert (pdir / "RTSTRUCT" / "RS.dcm").is_file()
        assert all(p.name.startswith("IM") and p.suffix == ".dcm" for p in (pdir / "CT").iterdir())
        assert 35 <= int(row["age"]) <= 90 and row["sex"] in ("M", "F")
        assert row["stage"] in ("I", "II", "III", "IV") and row["hpv"] in ("positive", "negative")
    for row in _rows(archive.genomic_csv):
        assert {row[g] for g in ("TP53", "KRAS", "EGFR", "PIK3CA", "CDKN2A")} <= {"0", "1"}
    for row in _rows(archive.outcomes_csv):
        assert float(row["os_months"]) > 0 and row["os_event"] in ("0", "1")
    truth = json.loads(archive.truth_json.read_text())
    assert set(truth["patients"]) == set(archive.patients)
    assert set(truth["survival"]["coefficients"]) == set(truth["survival"]["reference"])


def test_discovery_reads_the_layout(archive):
    from radflow.io.discovery import discover_archive

    cases = discover_archive(archive.root)
    assert [(c.institution, c.patient) for c in cases] == [
        ("INST_A", "A0001"),
        ("INST_B", "B0001"),
        ("INST_C", "C0001"),
    ]
    for case in cases:
        assert not case.errors and len(case.dicom) == 1
        (mr,) = case.files
        assert mr.modality == "MR" and [m.path.name for m in mr.masks] == ["t1_label.nii.gz"]


def test_ct_and_pet_dicom_are_readable_and_typed(archive):
    for pid in archive.patients:
        files = archive.files[pid]
        ct_first = pydicom.dcmread(sorted(files["CT"].iterdir())[0])
        assert ct_first.Modality == "CT" and ct_first.PixelRepresentation == 1
        assert float(ct_first.RescaleIntercept) == -1024 and float(ct_first.RescaleSlope) == 1
        assert ct_first.ConvolutionKernel and ct_first.KVP and ct_first.Manufacturer
        ct = sitk.GetArrayFromImage(_read_series(files["CT"]))
        assert 60 <= ct.shape[0] <= 90 and ct.shape[1:] == (128, 128)
        # Air outside the body, fat, soft tissue, lung or airway, and bone are all there.
        assert np.median(ct[:, :4, :4]) < -900
        assert np.percentile(ct, 99.5) > 400
        assert np.any((ct > -150) & (ct < -60)) and np.any((ct > 20) & (ct < 70))

        pet_first = pydicom.dcmread(sorted(files["PT"].iterdir())[0])
        assert pet_first.Modality == "PT" and pet_first.Units == "BQML"
        assert pet_first.DecayCorrection == "START"
        pet = _read_series(files["PT"])
        assert pet.GetSize()[2] >= 40 and pet.GetSpacing() != _read_series(files["CT"]).GetSpacing()

        rs = pydicom.dcmread(files["RTSTRUCT"])
        names = [r.ROIName for r in rs.StructureSetROISequence]
        assert names[0] == "GTV" and names[1] in ("Parotid_L", "Lung_R")
        frame = rs.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
        assert frame == ct_first.FrameOfReferenceUID == pet_first.FrameOfReferenceUID


def test_identifiers_are_in_the_headers_only(archive):
    ids = archive.identifiers
    for pid in archive.patients:
        files = archive.files[pid]
        for ds in (
            pydicom.dcmread(sorted(files["CT"].iterdir())[0]),
            pydicom.dcmread(sorted(files["PT"].iterdir())[0]),
            pydicom.dcmread(files["RTSTRUCT"]),
        ):
            assert ds.PatientID == pid
            surname, given = str(ds.PatientName).split("^")
            assert surname.isupper() and given.istitle()
            for keyword in (
                "PatientName",
                "PatientBirthDate",
                "AccessionNumber",
                "ReferringPhysicianName",
                "StudyInstanceUID",
            ):
                assert str(ds.get(keyword)) in ids, keyword
        assert str(pydicom.dcmread(sorted(files["CT"].iterdir())[0]).InstitutionName) in ids
    # Names, birth dates, accession numbers do not leak into the tables or the truth.
    text = "".join(
        p.read_text()
        for p in (
            archive.clinical_csv,
            archive.genomic_csv,
            archive.outcomes_csv,
            archive.truth_json,
        )
    )
    leaked = [i for i in ids if i not in archive.patients and i in text]
    assert not leaked
    # Distinct patients carry distinct identities.
    names = {
        str(pydicom.dcmread(sorted(archive.files[p]["CT"].iterdir())[0]).PatientName)
        for p in archive.patients
    }
    assert len(names) == len(archive.patients)


def test_pet_suv_from_the_tags(archive):
    """SUVbw computed by hand from the DICOM tags equals the simulated SUV."""
    for patient in draw_cohort(3, seed=SEED):
        files = sorted(archive.files[patient.patient]["PT"].iterdir())
        ds = pydicom.dcmread(files[0])
        item = ds.RadiopharmaceuticalInformationSequence[0]
        assert float(item.RadionuclideHalfLife) == 6586.2
        start = pydicom.valuerep.DT(ds.SeriesDate + ds.SeriesTime)
        injected = pydicom.valuerep.DT(item.RadiopharmaceuticalStartDateTime)
        minutes = (start - injected).total_seconds() / 60
        assert 50 <= minutes <= 75
        decayed = float(item.RadionuclideTotalDose) * 0.5 ** (minutes * 60 / 6586.2)
        suv = sitk.GetArrayFromImage(_read_series(archive.files[patient.patient]["PT"]))
        suv = suv * float(ds.PatientWeight) * 1000 / decayed
        expected = synthetic.simulate_pet(patient).values
        step = float(ds.RescaleSlope) * float(ds.PatientWeight) * 1000 / decayed  # SUV per unit
        assert np.abs(suv - expected).max() <= 2 * step
        body = expected > 0.5
        # Background near 1 SUV; the tumour rim far above it.
        assert 0.5 < np.median(expected[body]) < 1.6
        assert expected.max() > 3 * np.median(expected[body])


# ------------------------------------------------------------------ ground truth


def test_gtv_volume_from_rtstruct_and_mr_label_matches_truth(archive):
    truth = archive.truth["patients"]
    for pid in archive.patients:
        files = archive.files[pid]
        ct = _read_series(files["CT"])
        gtv = _rasterise(files["RTSTRUCT"], "GTV", ct)
        organ = _rasterise(files["RTSTRUCT"], truth[pid]["organ_roi"], ct)
        expected = truth[pid]["tumour_volume_mm3"]
        assert gtv.sum() * np.prod(ct.GetSpacing()) == pytest.approx(expected, rel=0.05)
        assert organ.sum() > gtv.sum() / 10 and not np.any(gtv & organ)

        label = sitk.ReadImage(str(files["MR_label"]))
        names = json.loads(files["MR_label_names"].read_text())
        assert names == {"1": "GTV", "2": truth[pid]["organ_roi"]}
        lab = sitk.GetArrayFromImage(label)
        assert set(np.unique(lab)) == {0, 1, 2}
        # 3.5-5 mm MR slices: a coarser voxel count.
        assert (lab == 1).sum() * np.prod(label.GetSpacing()) == pytest.approx(expected, rel=0.12)

        # One patient frame: GTV centroids of CT and MR agree in physical space.
        def centroid(mask, image):
            idx = np.argwhere(mask).mean(axis=0)[::-1]
            return np.array(image.TransformContinuousIndexToPhysicalPoint(idx.tolist()))

        mr_centroid = centroid(lab == 1, label)
        assert np.linalg.norm(centroid(gtv, ct) - mr_centroid) < 2.0
        assert np.linalg.norm(mr_centroid[::-1] - truth[pid]["tumour_centre_zyx_mm"]) < 0.5 * (
            3 * expected / (4 * np.pi)
        ) ** (1 / 3)


def test_pet_hot_spot_is_in_the_gtv(archive):
    for pid in archive.patients:
        pet = _read_series(archive.files[pid]["PT"])
        values = sitk.GetArrayFromImage(pet)
        peak = np.unravel_index(np.argmax(values), values.shape)
        point = np.array(pet.TransformIndexToPhysicalPoint([int(i) for i in peak[::-1]]))
        centre = np.array(archive.truth["patients"][pid]["tumour_centre_zyx_mm"][::-1])
        radius = (3 * archive.truth["patients"][pid]["tumour_volume_mm3"] / (4 * np.pi)) ** (1 / 3)
        assert np.linalg.norm(point - centre) < 1.5 * radius


def test_images_carry_the_hidden_properties():
    """Tumour HU spread rises with heterogeneity, PET SUVmax with the tumour uptake."""
    cohort = [draw_patient(i, seed=3, institutions=1) for i in range(8)]
    het, spread, uptake, suvmax = [], [], [], []
    for p in cohort:
        ct = synthetic.simulate_ct(p)
        pet = synthetic.simulate_pet(p)
        het.append(p.truth["heterogeneity"])
        spread.append(ct.values[ct.labels == 1].std())
        uptake.append(p.truth["suv_tumour"])
        suvmax.append(pet.values[pet.labels == 1].max())
    assert stats.spearmanr(het, spread).statistic > 0.5
    assert stats.spearmanr(uptake, suvmax).statistic > 0.7
    volumes = [p.truth["tumour_volume_mm3"] for p in draw_cohort(60, seed=3)]
    assert max(volumes) / min(volumes) > 8  # about an order of magnitude


def test_hidden_hazard_model_has_real_signal():
    cohort = draw_cohort(200, seed=7)
    lp = np.array([p.truth["linear_predictor"] for p in cohort])
    time = np.array([p.outcome["os_months"] for p in cohort])
    event = np.array([p.outcome["os_event"] for p in cohort], dtype=bool)
    # Harrell's C by brute force over comparable pairs (earlier time had the event).
    concordant = ties = comparable = 0
    for i in np.flatnonzero(event):
        later = time > time[i]
        comparable += later.sum()
        concordant += (lp[i] > lp[later]).sum()
        ties += (lp[i] == lp[later]).sum()
    c_index = (concordant + 0.5 * ties) / comparable
    assert c_index > 0.7
    assert 0.15 < 1 - event.mean() < 0.45  # ~30 % censored

    # Latent event times follow the stated Weibull PH model: the cumulative
    # hazard at the event time, exp(lp) * (T / scale) ** shape, is Exp(1).
    baseline = synthetic.hidden_model()["survival"]["baseline"]
    shape, scale = baseline["shape"], baseline["scale_months"]
    latent = np.array([p.truth["event_time_months"] for p in cohort])
    cumulative = np.exp(lp) * (latent / scale) ** shape
    assert stats.kstest(cumulative, "expon").pvalue > 0.01
    # The linear predictor is the stated sum over the covariates.
    coef = synthetic.hidden_model()["survival"]["coefficients"]
    ref = synthetic.hidden_model()["survival"]["reference"]
    p = cohort[5]
    assert p.truth["linear_predictor"] == pytest.approx(
        sum(coef[k] * (p.truth["covariates"][k] - ref[k]) for k in coef)
    )
    assert p.truth["covariates"]["log_tumour_volume_cm3"] == pytest.approx(
        np.log(p.truth["tumour_volume_mm3"] / 1000)
    )


def test_institutions_differ_in_ct_noise_and_intensity(archive):
    """Batch effects: soft-tissue level and noise differ between scanners."""
    level, noise = {}, {}
    for pid in archive.patients:
        ct = sitk.GetArrayFromImage(_read_series(archive.files[pid]["CT"])).astype(float)
        # Soft tissue far from any edge: a 5x5 neighbourhood all within soft-tissue HU.
        soft = (ct > -60) & (ct < 150)
        core = ndimage.binary_erosion(soft, np.ones((1, 5, 5), bool))
        level[pid] = np.median(ct[core])
        # Noise from the residual to a 5x5 in-plane mean (removes anatomy, keeps noise).
        residual = ct - ndimage.uniform_filter(ct, (1, 5, 5))
        noise[pid] = residual[core].std()
    # Soft tissue is 40 HU; each scanner reports HU * scale + offset.
    for pid, site in zip(archive.patients, synthetic.SITES):
        assert level[pid] == pytest.approx(40 * site.ct.hu_scale + site.ct.hu_offset, abs=6)
    assert max(level.values()) - min(level.values()) > 15
    assert noise["A0001"] < noise["B0001"] < noise["C0001"]
    assert noise["C0001"] > 1.5 * noise["A0001"]


# ------------------------------------------------------------------ determinism, CLI, errors


def test_same_seed_same_archive_via_cli(archive, tmp_path, capsys):
    """The first patient of the CLI's 1-patient archive is byte/value identical."""
    assert (
        radflow_main(["demo-data", str(tmp_path / "one"), "--patients", "1", "--seed", str(SEED)])
        == 0
    )
    assert "1 patients" in capsys.readouterr().out
    one = tmp_path / "one"
    a = archive.files["A0001"]
    b = {k: one / v.relative_to(archive.root) for k, v in a.items()}
    for key in ("MR", "MR_label", "MR_label_names"):
        assert a[key].read_bytes() == b[key].read_bytes()
    assert _rows(one / "clinical.csv")[0] == _rows(archive.clinical_csv)[0]
    assert _rows(one / "outcomes.csv")[0] == _rows(archive.outcomes_csv)[0]
    assert (
        json.loads((one / "truth.json").read_text())["patients"]["A0001"]
        == archive.truth["patients"]["A0001"]
    )
    for key in ("CT", "PT"):
        fa, fb = sorted(a[key].iterdir()), sorted(b[key].iterdir())
        assert [f.name for f in fa] == [f.name for f in fb]
        assert all(x.read_bytes() == y.read_bytes() for x, y in zip(fa, fb))
        for x, y in zip(fa[::7], fb[::7]):
            dx, dy = pydicom.dcmread(x), pydicom.dcmread(y)
            assert dx.PixelData == dy.PixelData
            for kw in ("PatientName", "SeriesInstanceUID", "ImagePositionPatient", "RescaleSlope"):
                assert dx.get(kw) == dy.get(kw)
    assert a["RTSTRUCT"].read_bytes() == b["RTSTRUCT"].read_bytes()
    ra, rb = pydicom.dcmread(a["RTSTRUCT"]), pydicom.dcmread(b["RTSTRUCT"])
    assert [list(c.ContourData) for c in ra.ROIContourSequence[0].ContourSequence] == [
        list(c.ContourData) for c in rb.ROIContourSequence[0].ContourSequence
    ]


def test_different_seeds_differ():
    a, b = draw_patient(0, seed=0), draw_patient(0, seed=1)
    assert a.truth["tumour_volume_mm3"] != b.truth["tumour_volume_mm3"]
    assert a.identifiers.isdisjoint(b.identifiers - {"A0001"})
    assert not np.array_equal(synthetic.simulate_mr(a).values, synthetic.simulate_mr(b).values)
    again = draw_patient(0, seed=0)
    assert again.truth == a.truth and again.dicom == a.dicom


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="patients"):
        write_demo_archive(tmp_path / "x", patients=0)
    with pytest.raises(SettingsError, match="institutions must be at most"):
        write_demo_archive(tmp_path / "x", institutions=len(synthetic.SITES) + 1)
    with pytest.raises(SettingsError, match="seed"):
        draw_cohort(2, seed=-1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty folder"):
        write_demo_archive(tmp_path / "full", patients=1)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert radflow_main(["demo-data", str(tmp_path / "full"), "--patients", "1"]) == 2


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(patient, folder):
        folder.mkdir(parents=True)
        (folder / "half.dcm").write_bytes(b"")
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo_archive, "_write_patient", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_demo_archive(tmp_path / "demo", patients=2)
    assert list(tmp_path.iterdir()) == []
