"""``radflow demo``: the whole pipeline on a synthetic archive, on this machine."""

from __future__ import annotations

import time
from pathlib import Path


def run_demo(out: Path, *, patients: int = 12, seed: int = 0) -> dict:
    """Write a synthetic archive, ingest it, and print where everything is.

    Parameters
    ----------
    out : Path
        Folder for ``archive/`` and ``store/``; re-running reuses both (unchanged
        series are skipped by fingerprint).
    patients, seed : int
        Size and seed of the synthetic archive.

    Returns
    -------
    dict
        Paths of what was written.
    """
    from radflow.io.synthetic import write_demo_archive
    from radflow.pipeline.ingest import ingest_archive

    out = Path(out)
    archive, store = out / "archive", out / "store"
    started = time.monotonic()
    print(f"[1/2] synthetic archive: {patients} patients -> {archive}", flush=True)
    if not (archive / "clinical.csv").is_file():
        write_demo_archive(archive, patients=patients, seed=seed)
    print(f"[2/2] ingest -> {store}", flush=True)
    summary = ingest_archive(archive, store)
    print(summary.report())
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    print(f"  archive:  {archive}")
    print(f"  store:    {store}   (radflow ls {store})")
    print(f"  manifest: {store / 'manifest.parquet'}")
    return {"archive": archive, "store": store}
