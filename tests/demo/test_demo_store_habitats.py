"""`radflow habitats fit/apply` and `radflow run` on a demo store, on a real two-worker cluster.

Issue 14's end-to-end check: a small synthetic demo archive is ingested and its PET GTVs are
segmented as `make demo` does; the command line then fits the CT+PET habitat model of the GTVs,
writes their habitat maps into the store and extracts the demo's feature set (PyRadiomics
classes plus the habitat class) on a two-worker LocalCluster. Expected values come from two
sides that share no code: the habitat maps as stored (voxel counts) against the habitat
class's columns, and each habitat's own row (PyRadiomics-mode shape of that habitat as a ROI)
against the habitat class's volume of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.cli import main
from radflow.demo import scenario
from radflow.pipeline.ingest import ingest_archive
from radflow.store.catalogue import list_series
from radflow.store.habitats import habitat_key
from radflow.store.read import open_label

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from distributed import LocalCluster

    out = tmp_path_factory.mktemp("demo_habitats")
    archive = scenario.prepare_archive(out, patients=6, seed=3)
    store, table, model = out / "store", out / "features", out / "gtv.joblib"
    ingest_archive(archive, store, key_file=scenario.demo_key_file(out), progress=False)
    scenario.segment_pet(store)
    min_size = str(scenario.habitat_min_size_mm3(store))
    fit = ["habitats", "fit", str(store), "--roi", "GTV", "--channels", "CT", "PT"]
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        where = ["--scheduler", cluster.scheduler_address, "-q"]
        codes = [
            main([*fit, "--n-habitats", "2", "--min-size", min_size, "-o", str(model)]),
            main(["habitats", "apply", str(store), str(model), *where]),
            main(
                ["run", str(store), "-p", str(scenario.demo_params()), "--table", str(table)]
                + where
            ),
            # an incremental re-run of apply computes nothing and succeeds
            main(["habitats", "apply", str(store), str(model), "--incremental", *where]),
        ]
    return store, pd.read_parquet(table), codes


def test_the_commands_succeed(demo_run):
    _, _, codes = demo_run
    assert codes == [0, 0, 0, 0]


def test_habitat_columns_equal_the_stored_maps(demo_run):
    store, frame, _ = demo_run
    ct_gtv = frame[(frame["modality"] == "CT") & (frame["roi"] == "gtv")]
    assert len(ct_gtv) >= 4
    checked = 0
    for info in list_series(store):
        if info.modality != "CT":
            continue
        rows = ct_gtv[(ct_gtv["case_id"] == info.case) & (ct_gtv["series_id"] == info.series)]
        if rows.empty:
            continue
        labels = open_label(store, info.case, info.series, habitat_key("GTV")).values
        inside = np.count_nonzero(labels)
        for k in (1, 2):
            expected = np.count_nonzero(labels == k) / inside
            assert rows[f"habitat_Fraction_{k}"].iloc[0] == pytest.approx(expected, abs=1e-12)
        checked += 1
    assert checked == len(ct_gtv)


def test_each_habitat_row_has_the_volume_the_habitat_class_gives_it(demo_run):
    _, frame, _ = demo_run
    gtv = frame[(frame["modality"] == "CT") & (frame["roi"] == "gtv")].set_index("case_id")
    rows = frame[frame["roi"].str.startswith("gtv_habitat_")]
    assert len(rows) >= len(gtv)  # one row per habitat present in each GTV
    for _, row in rows.iterrows():
        k = int(row["roi"].rsplit("_", 1)[1])
        volume = gtv.loc[row["case_id"], f"habitat_Volume_{k}"]
        assert row["shape_VoxelVolume"] == pytest.approx(volume, rel=1e-12)
