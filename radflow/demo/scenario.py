"""``radflow demo``: the whole pipeline on a synthetic archive, on this machine.

archive (DICOM CT + RTSTRUCT, DICOM PET, NIfTI MR) -> store -> PET threshold
segmentation -> feature table (embedded Dask cluster) -> feature stability
(ICC of the CT GTV features under perturbations) -> survival model -> HTML
report. Each step reuses what an earlier run left (unchanged series are
not re-ingested, the feature table is updated incrementally), as long as the
archive is the one asked for: an archive of other parameters (patients, seed)
is written anew, and what was made from the old one removed.

The demo pseudonymises with its own key, :data:`DEMO_KEY`, written to
``OUT/demo-pseudonym.key`` wherever it is started (``make demo`` or
``radflow demo``): a public key, for the synthetic archive only.
"""

from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

import numpy as np

from radflow._atomic import atomic_file
from radflow._lazy import load
from radflow.demo.archive import archive_parameters
from radflow.demo.study import ICC_RULE, run_modelling
from radflow.demo.synthetic import write_demo_archive
from radflow.errors import InputError
from radflow.model.stability import stability_study
from radflow.params.pyradiomics_params import load_params
from radflow.pipeline.ingest import ingest_archive
from radflow.pipeline.run import run
from radflow.pipeline.segment import segment_series
from radflow.report.build import write_demo_report
from radflow.store.catalogue import list_series

pd = load("pandas")

#: The demo's feature set: PyRadiomics' default classes on the original image.
DEMO_PARAMS = "demo.yaml"
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
DERIVED = ("store", "features", "features.errors", "stability_icc.parquet", "model", "report.html")


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
            demo_params(),
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
        Folder for ``archive/``, ``store/``, ``features/``,
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
        print(f"\n[{n}/7] {text}  ({time.monotonic() - started:.0f} s)", flush=True)

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
    step(4, f"feature extraction on an embedded Dask cluster -> {table}")
    summary = run(store, demo_params(), table, workers=workers, incremental=True)
    print(summary.report() if hasattr(summary, "report") else summary)
    step(5, "feature stability: ICC of the CT GTV features under perturbations")
    icc = stability_step(store, out / "stability_icc.parquet")
    step(6, "survival model: ComBat + elastic-net Cox, nested CV and leave-one-institution-out")
    model = run_modelling(table, archive, out / "model", icc_table=icc, key_file=key_file)
    step(7, "report")
    report = write_demo_report(out, model_dir=out / "model", store=store, table=table)

    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    print(f"  archive:  {archive}")
    print(f"  store:    {store}   (radflow ls {store})")
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
        "table": table,
        "icc": icc,
        "model": model,
        "report": report,
    }
