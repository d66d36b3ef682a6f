"""``radflow demo``: the whole pipeline on a synthetic archive, on this machine.

archive (DICOM CT + RTSTRUCT, DICOM PET, NIfTI MR) -> store -> PET threshold
segmentation -> CT+PET habitats of each GTV (a habitat model fitted on the cohort's GTVs,
each GTV's habitat map stored as the label ``gtv_habitats``) -> feature table (embedded Dask
cluster; the habitat class among the features) -> feature stability (ICC of the CT GTV
features under perturbations) -> survival model -> HTML report, where the necrotic habitat's
fraction is set against the generator's hidden necrosis fraction (``truth.json``, read for
that comparison only, never by the model). Each step reuses what an earlier run left
(unchanged series are not re-ingested, unchanged habitat maps are kept, the feature table is
updated incrementally), as long as the archive is the one asked for: an archive of other
parameters (patients, seed) is written anew, and what was made from the old one removed.

The demo pseudonymises with its own key, :data:`DEMO_KEY`, written to
``OUT/demo-pseudonym.key`` wherever it is started (``make demo`` or
``radflow demo``): a public key, for the synthetic archive only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from importlib import resources
from pathlib import Path

import numpy as np

from radflow._atomic import atomic_file
from radflow._lazy import load
from radflow._version import __version__
from radflow.demo.archive import archive_parameters
from radflow.demo.study import ICC_RULE, run_modelling
from radflow.demo.synthetic import write_demo_archive
from radflow.errors import InputError
from radflow.io.pseudonym import Pseudonymiser, load_key
from radflow.model.habitat import HabitatModel
from radflow.model.stability import stability_study
from radflow.params.pyradiomics_params import load_params, params_to_dict
from radflow.pipeline import habitats
from radflow.pipeline.clusters import available_cores, local_cluster
from radflow.pipeline.ingest import ingest_archive
from radflow.pipeline.run import run
from radflow.pipeline.segment import segment_series
from radflow.report.build import write_demo_report
from radflow.report.habitats import HabitatReference
from radflow.store.catalogue import list_series

pd = load("pandas")

#: The demo's feature set: PyRadiomics' default classes on the original image, and the
#: habitat class of the GTV's habitat map (``habitatCount`` = :data:`HABITAT_COUNT`).
DEMO_PARAMS = "demo.yaml"
#: The demo's habitats: of the CT GTV, from CT (HU) and PET (SUV resampled onto the CT grid).
HABITAT_ROI = "GTV"
HABITAT_CHANNELS = ("CT", "PT")
#: K: the synthetic tumours have two compartments, a necrotic core and a viable rim.
HABITAT_COUNT = 2
#: The habitat model file, in the demo's output folder, and the digest of what it was fitted on.
HABITAT_MODEL = "habitats.joblib"
HABITAT_INPUTS = "habitats.inputs"
#: Perturbations of the demo's stability study: the contour one voxel smaller
#: and larger, and CT noise of 10 HU (standard deviation).
STABILITY_PERTURBATIONS = ("original", "erode:1", "dilate:1", "noise:10")
#: The demo's pseudonymisation key. Public (it is in radflow's source): for the synthetic
#: archive only, never for patient data.
DEMO_KEY = "radflow-demo-key"
#: Where the demo writes :data:`DEMO_KEY`, in its output folder.
DEMO_KEY_FILE = "demo-pseudonym.key"
#: Smallest PET GTV the demo keeps (mm³), before the extraction's minimum (see :func:`segment_pet`).
PET_MIN_SIZE_MM3 = 500.0
#: Institutions of the demo archive.
INSTITUTIONS = 3
#: What the demo makes from its archive, in its output folder (removed with an old archive).
DERIVED = (
    "store",
    "features",
    "features.errors",
    HABITAT_MODEL,
    HABITAT_INPUTS,
    "stability_icc.parquet",
    "model",
    "report.html",
)


def demo_params() -> Path:
    """The parameter file the demo extracts with (shipped with radflow)."""
    return Path(str(resources.files("radflow.demo").joinpath(DEMO_PARAMS)))


def demo_key_file(out: str | Path) -> Path:
    """Write :data:`DEMO_KEY` to ``out/demo-pseudonym.key`` (mode 0600) unless it is there."""
    path = Path(out) / DEMO_KEY_FILE
    if not path.is_file() or path.read_text(encoding="utf-8").strip() != DEMO_KEY:
        with atomic_file(path) as tmp:
            tmp.write_text(DEMO_KEY + "\n", encoding="ascii")
            tmp.chmod(0o600)
    return path


def pet_min_size_mm3(spacing_zyx) -> float:
    """Smallest PET GTV the demo's segmentation keeps on a grid of ``spacing_zyx`` (mm).

    :data:`PET_MIN_SIZE_MM3`, and at least one voxel more than the demo's
    parameter file's ``minimumROISize``: a GTV the extraction would refuse is
    not segmented at all (the series is listed as not segmented) rather than
    written and then failed by every run.
    """
    minimum = load_params(demo_params()).settings.minimum_roi_size or 0
    voxel_mm3 = float(np.prod(np.asarray(spacing_zyx, dtype=float)))
    return max(PET_MIN_SIZE_MM3, (minimum + 1) * voxel_mm3)


def habitat_min_size_mm3(store: str | Path) -> float:
    """Smallest connected piece of a habitat the demo's habitat maps keep (mm³).

    ``radflow run`` extracts each habitat of a GTV as its own ROI (rows ``gtv_habitat_<k>``),
    so a habitat must hold more voxels than the demo's ``minimumROISize``: its pieces
    (connected components) must, on the coarsest grid among the series that carry the
    habitats' GTVs (:data:`HABITAT_ROI` on the first of :data:`HABITAT_CHANNELS`). The habitat
    model reassigns smaller pieces to the neighbouring habitat
    (:func:`radflow.model.habitat.reassign_small_components`), so a habitat made only of small
    pieces is absent from that GTV's map (its volume and fraction 0, no row of it) rather than a
    ROI the extraction refuses. 0 when the store has no such series.
    """
    minimum = load_params(demo_params()).settings.minimum_roi_size or 0
    units, _ = habitats.plan_units(store, HABITAT_ROI, HABITAT_CHANNELS)
    used = {(u.case, u.series) for u in units}
    voxels_mm3 = [
        float(np.prod(np.asarray(info.spacing_zyx, dtype=float)))
        for info in list_series(store)
        if (info.case, info.series) in used
    ]
    return (minimum + 1) * max(voxels_mm3, default=0.0)


def segment_pet(store: str | Path) -> list[str]:
    """Add a PET GTV (40 % of SUVmax, largest component) to every PT series without one.

    Components smaller than :func:`pet_min_size_mm3` are dropped. Returns the
    one-line errors of series where segmentation failed (no component large
    enough included); the others go on.
    """
    errors = []
    for info in list_series(store):
        if info.modality != "PT" or "gtv_pet" in info.label_keys:
            continue
        try:
            segment_series(
                store,
                info.case,
                info.series,
                method="suv-relative",
                fraction=0.4,
                keep="largest",
                min_size_mm3=pet_min_size_mm3(info.spacing_zyx),
                name="GTV_PET",
            )
        except InputError as exc:
            errors.append(str(exc))
    return errors


def habitat_step(
    store: str | Path,
    model_file: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> dict:
    """Fit the demo's habitat model on every CT GTV and write each GTV's habitat map.

    The two-stage habitat model (:class:`radflow.model.habitat.HabitatModel`, K =
    :data:`HABITAT_COUNT`, seed 0, pieces of habitats smaller than :func:`habitat_min_size_mm3`
    reassigned to their neighbour) is fitted on the GTV voxels of every case with CT and PET
    (:func:`radflow.pipeline.habitats.fit`), then applied on an embedded Dask cluster
    (:func:`radflow.pipeline.habitats.apply`, incremental: unchanged maps are kept), each map
    stored as the label ``gtv_habitats`` of the CT series. The extraction's habitat class
    then reads them. ``scheduler``: a running cluster's address (the demo's embedded cluster,
    shared with the extraction); else one of ``workers`` processes is started.

    Returns
    -------
    dict
        ``model`` (path), ``n_habitats``, ``necrotic`` (:func:`necrotic_habitat`),
        ``means`` (habitat -> mean of each channel) and ``seconds``.
    """
    started = time.monotonic()
    estimator = HabitatModel(
        HABITAT_COUNT,
        method="two-stage",
        min_size_mm3=habitat_min_size_mm3(store),
        random_state=0,
    )
    inputs = _habitat_inputs(store, estimator)
    recorded = Path(model_file).with_suffix(".inputs")
    if (
        Path(model_file).is_file()
        and recorded.is_file()
        and recorded.read_text(encoding="ascii").strip() == inputs
    ):
        print(f"habitat model: {model_file} fitted on the same GTVs and channels; reused")
    else:
        fitted = habitats.fit(store, HABITAT_ROI, HABITAT_CHANNELS, estimator, model_file)
        with atomic_file(recorded) as tmp:
            tmp.write_text(inputs + "\n", encoding="ascii")
        print(fitted.report())
    print(
        f"  habitat pieces under {estimator.min_size_mm3:.0f} mm³ (minimumROISize + 1 voxels on "
        "the coarsest CT grid) merged into their neighbouring habitat"
    )
    applied = habitats.apply(
        store, model_file, scheduler=scheduler, workers=workers, incremental=True, progress=False
    )
    print(applied.report())
    model = habitats.load_model(model_file)["model"]
    necrotic = necrotic_habitat(model)
    means = {
        k + 1: dict(zip(HABITAT_CHANNELS, map(float, row)))
        for k, row in enumerate(model.habitat_means_)
    }
    for k, row in means.items():
        values = ", ".join(f"{c} {v:.1f}" for c, v in row.items())
        print(f"  habitat {k}: mean {values}{'  (necrotic: lowest CT and PET)' * (k == necrotic)}")
    return {
        "model": model_file,
        "n_habitats": int(model.n_habitats_),
        "necrotic": necrotic,
        "means": means,
        "seconds": time.monotonic() - started,
    }


def _habitat_inputs(store: str | Path, estimator) -> str:
    """Digest of what the demo's habitat model is fitted on: the units
    (:func:`radflow.pipeline.habitats.plan_units`: series, content fingerprints, the GTV's
    label hash), the cases left out, the estimator's parameters and radflow's version. The
    same digest, the same model (the fit is seeded): a rerun of the demo skips the fit."""
    units, missing = habitats.plan_units(store, HABITAT_ROI, HABITAT_CHANNELS)
    text = json.dumps(
        [
            __version__,
            list(HABITAT_CHANNELS),
            HABITAT_ROI,
            repr(sorted(estimator.get_params().items())),
            [
                [u.case, u.series, u.label_key, u.label, *u.fingerprints, u.label_hash]
                for u in units
            ],
            [str(m) for m in missing],
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def necrotic_habitat(model) -> int:
    """The habitat of lowest CT and PET: the lowest sum of its standardised channel means.

    Each channel's mean is standardised as the model standardises voxels (the training
    voxels' mean and scale, ``channel_mean_`` and ``channel_scale_``), so that HU and SUV
    weigh alike. A necrotic core attenuates less and takes up less tracer than viable tumour.
    """
    z = (model.habitat_means_ - model.channel_mean_) / model.channel_scale_
    return int(np.argmin(z.sum(axis=1))) + 1


def hidden_necrosis(archive: str | Path, key_file: str | Path, habitat: int) -> HabitatReference:
    """The generator's hidden necrosis fraction of each patient, as the report's reference.

    Read from the archive's ``truth.json`` (the synthetic cohort's ground truth, never an
    input of the model) and keyed by the pseudonymised patient id (the demo key), so that the
    report can set it against the fraction of ``habitat`` in the feature table.
    """
    truth = json.loads((Path(archive) / "truth.json").read_text(encoding="utf-8"))
    pseudonym = Pseudonymiser(load_key(key_file=key_file))
    values = {
        pseudonym.patient(patient): float(record["necrosis_fraction"])
        for patient, record in truth["patients"].items()
    }
    return HabitatReference(
        values=pd.Series(values, name="necrosis_fraction", dtype=float),
        habitat=habitat,
        name="hidden necrosis fraction (truth.json)",
        habitat_name=f"necrotic habitat (habitat {habitat})",
        where=f"CT.{HABITAT_ROI.lower()}",
    )


def stability_params() -> dict:
    """The demo's parameters without the habitat class: the stability study perturbs the
    ROI and the image, and a perturbed ROI has no habitat map."""
    params = params_to_dict(load_params(demo_params()))
    params["featureClass"] = {k: v for k, v in params["featureClass"].items() if k != "habitat"}
    params["setting"] = {k: v for k, v in params["setting"].items() if k != "habitatCount"}
    return params


def stability_step(store: str | Path, out_file: Path) -> Path | None:
    """ICC of every CT GTV feature across :data:`STABILITY_PERTURBATIONS`, as Parquet.

    Runs :func:`radflow.model.stability.stability_study` with the demo's
    parameter file on every patient's CT GTV and writes its ICC table to
    ``out_file`` (temporary name, then rename). Prints the time taken and
    how many features are stable.

    Returns
    -------
    pathlib.Path or None
        ``out_file``; None (and a printed reason) when the study found
        fewer than two CT GTVs.
    """
    started = time.monotonic()
    try:
        result = stability_study(
            store,
            stability_params(),
            perturbations=STABILITY_PERTURBATIONS,
            modalities=["CT"],
            rois=["gtv"],
        )
    except InputError as exc:
        print(f"  skipped, no ICC filter in the model: {exc}")
        return None
    with atomic_file(out_file) as tmp:
        result.icc.to_parquet(tmp, index=False)
    rows = result.icc[result.icc["form"] == ICC_RULE["form"]]
    stable = int((rows[ICC_RULE["statistic"]] >= ICC_RULE["threshold"]).sum())
    roi = ["case", "series", "label_key", "label"]
    n_rois = len(pd.concat([result.values[roi], result.failures[roi]]).drop_duplicates())
    print(
        f"  {n_rois} CT GTVs x {len(STABILITY_PERTURBATIONS)} perturbations "
        f"({', '.join(STABILITY_PERTURBATIONS[1:])} HU) in {time.monotonic() - started:.0f} s"
    )
    for failure in result.failures.head(5).itertuples():
        print(f"  failed: {failure.case} {failure.perturbation}: {failure.message}")
    if len(result.failures) > 5:
        print(f"  ... and {len(result.failures) - 5} more failed extractions")
    print(
        f"  ICC over {int(rows['n_subjects'].max())} GTVs (those with every perturbation "
        f"extracted): {stable} of {len(rows)} features with {ICC_RULE['form']} "
        f"{ICC_RULE['statistic']} >= {ICC_RULE['threshold']}"
    )
    print(f"  ICC table: {out_file}")
    return out_file


def prepare_archive(out: str | Path, *, patients: int, seed: int) -> Path:
    """The demo archive ``out/archive`` of these parameters: reused, or written anew.

    An archive written with other parameters (or before radflow recorded
    them) is replaced, and what the demo made from it (:data:`DERIVED`: store,
    feature table, ICC table, model, report) removed, saying so: a store of
    48 patients must not feed a model of 100.

    Raises
    ------
    radflow.errors.InputError
        ``out/archive`` exists but is not a demo archive (it is left alone).
    """
    out = Path(out)
    archive = out / "archive"
    wanted = {"patients": patients, "seed": seed, "institutions": INSTITUTIONS}
    if archive.exists():
        found = archive_parameters(archive)
        if found == wanted:
            print(f"  exists ({patients} patients, seed {seed}); reused")
            return archive
        if not ((archive / "clinical.csv").is_file() and (archive / "truth.json").is_file()):
            raise InputError(
                archive,
                "exists and is not a radflow demo archive; remove it or choose another --out",
            )
        had = (
            "an archive without its parameters (written by an older radflow)"
            if found is None
            else f"{found['patients']} patients (seed {found['seed']})"
        )
        removed = [name for name in ("archive", *DERIVED) if (out / name).exists()]
        print(
            f"  {archive} holds {had}, not {patients} patients (seed {seed}): writing a new "
            f"archive; removing what was made from the old one: {', '.join(removed)}"
        )
        for name in removed:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    write_demo_archive(archive, patients=patients, seed=seed, institutions=INSTITUTIONS)
    return archive


def run_demo(out: Path, *, patients: int = 48, seed: int = 0, workers: int | None = None) -> dict:
    """Run every step of the product on a synthetic archive and print where the results are.

    Parameters
    ----------
    out : Path
        Folder for ``archive/``, ``store/``, ``habitats.joblib``, ``features/``,
        ``stability_icc.parquet``, ``model/`` and ``report.html``.
    patients, seed : int
        Size and seed of the synthetic archive (an archive of other parameters
        in ``out`` is replaced: :func:`prepare_archive`).
    workers : int, optional
        Dask worker processes (default: one per core).

    Returns
    -------
    dict
        Paths of what was written.
    """
    out = Path(out)
    archive, store, table = out / "archive", out / "store", out / "features"
    started = time.monotonic()

    def step(n: int, text: str) -> None:
        print(f"\n[{n}/8] {text}  ({time.monotonic() - started:.0f} s)", flush=True)

    key_file = demo_key_file(out)
    print(
        f"pseudonymisation key: the demo key {DEMO_KEY!r} ({key_file}): public, for this "
        "synthetic archive only; never use it for patient data"
    )
    step(1, f"synthetic archive: {patients} patients, {INSTITUTIONS} institutions -> {archive}")
    prepare_archive(out, patients=patients, seed=seed)
    step(2, f"ingest -> {store}")
    print(ingest_archive(archive, store, key_file=key_file, jobs=2).report())
    step(3, "PET segmentation: 40 % of SUVmax, GTVs the extraction accepts")
    errors = segment_pet(store)
    for error in errors:
        print(f"  not segmented: {error}")
    if errors:
        print(
            f"  {len(errors)} PET series without a GTV the extraction accepts (more voxels "
            "than minimumROISize): no PET features for those patients"
        )
    # One embedded cluster serves the habitat maps and the extraction (one start, not two).
    with local_cluster(workers or available_cores()) as cluster:
        step(4, f"habitats: CT+PET habitats of each GTV (K={HABITAT_COUNT}) -> gtv_habitats")
        habitat = habitat_step(store, out / HABITAT_MODEL, scheduler=cluster.scheduler_address)
        print(f"  habitat step: {habitat['seconds']:.1f} s")
        step(5, f"feature extraction on an embedded Dask cluster -> {table}")
        summary = run(
            store, demo_params(), table, scheduler=cluster.scheduler_address, incremental=True
        )
        print(summary.report() if hasattr(summary, "report") else summary)
    step(6, "feature stability: ICC of the CT GTV features under perturbations")
    icc = stability_step(store, out / "stability_icc.parquet")
    step(7, "survival model: ComBat + elastic-net Cox, nested CV and leave-one-institution-out")
    model = run_modelling(table, archive, out / "model", icc_table=icc, key_file=key_file)
    step(8, "report")
    report = write_demo_report(
        out,
        model_dir=out / "model",
        store=store,
        table=table,
        habitat_reference=hidden_necrosis(archive, key_file, habitat["necrotic"]),
    )

    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    print(f"  archive:  {archive}")
    print(f"  store:    {store}   (radflow ls {store})")
    print(f"  habitats: {habitat['model']}   (maps: label gtv_habitats of each CT series)")
    print(f"  features: {table}")
    if icc is not None:
        print(f"  ICC:      {icc}")
    print(f"  model:    {out / 'model'}")
    print(f"  report:   {report}")
    print(f"  key:      {key_file}   (demo key; ingest into this store with --key-file {key_file})")
    query = (
        f"select institution, modality, roi, count(distinct case_id) as patients, "
        f"round(avg(shape_MeshVolume)) as mean_volume_mm3, "
        f"round(avg(firstorder_Mean), 2) as mean_intensity "
        f"from read_parquet('{table}/**/*.parquet', hive_partitioning=true) "
        f"where image_type = 'original' group by all order by all"
    )
    print("\nQuery the feature table with DuckDB (the duckdb CLI, or its Python package in .venv):")
    print(f'  duckdb -c "{query}"')
    print(f'  .venv/bin/python -c "import duckdb; duckdb.sql(\\"{query}\\").show()"')
    return {
        "archive": archive,
        "store": store,
        "habitats": habitat["model"],
        "table": table,
        "icc": icc,
        "model": model,
        "report": report,
    }
