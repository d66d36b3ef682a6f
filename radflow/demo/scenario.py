"""``radflow demo``: the whole pipeline on a synthetic archive, on this machine.

archive (DICOM CT + RTSTRUCT, DICOM PET, NIfTI MR) -> store -> PET threshold
segmentation -> feature table (embedded Dask cluster) -> feature stability
(ICC of the CT GTV features under perturbations) -> survival model -> HTML
report. Each step reuses what an earlier run left (unchanged series are
not re-ingested, the feature table is updated incrementally).
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from radflow._atomic import atomic_file
from radflow._lazy import load
from radflow.demo.study import ICC_RULE, run_modelling
from radflow.demo.synthetic import write_demo_archive
from radflow.errors import InputError
from radflow.model.stability import stability_study
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


def demo_params() -> Path:
    """The parameter file the demo extracts with (shipped with radflow)."""
    return Path(str(resources.files("radflow.demo").joinpath(DEMO_PARAMS)))


def segment_pet(store: str | Path) -> list[str]:
    """Add a PET GTV (40 % of SUVmax, largest component) to every PT series without one.

    Returns the one-line errors of series where segmentation failed; the
    others go on.
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
                min_size_mm3=500.0,
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


def run_demo(out: Path, *, patients: int = 48, seed: int = 0, workers: int | None = None) -> dict:
    """Run every step of the product on a synthetic archive and print where the results are.

    Parameters
    ----------
    out : Path
        Folder for ``archive/``, ``store/``, ``features/``,
        ``stability_icc.parquet``, ``model/`` and ``report.html``.
    patients, seed : int
        Size and seed of the synthetic archive (a new size needs a new ``out``).
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

    step(1, f"synthetic archive: {patients} patients, 3 institutions -> {archive}")
    if not (archive / "clinical.csv").is_file():
        write_demo_archive(archive, patients=patients, seed=seed)
    else:
        print("  exists; reused")
    step(2, f"ingest -> {store}")
    print(ingest_archive(archive, store, jobs=2).report())
    step(3, "PET segmentation: 40 % of SUVmax")
    for error in segment_pet(store):
        print(f"  failed: {error}")
    step(4, f"feature extraction on an embedded Dask cluster -> {table}")
    summary = run(store, demo_params(), table, workers=workers, incremental=True)
    print(summary.report() if hasattr(summary, "report") else summary)
    step(5, "feature stability: ICC of the CT GTV features under perturbations")
    icc = stability_step(store, out / "stability_icc.parquet")
    step(6, "survival model: ComBat + elastic-net Cox, nested CV and leave-one-institution-out")
    model = run_modelling(table, archive, out / "model", icc_table=icc)
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
    query = (
        f"select institution, modality, roi, count(*) as rois, "
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
