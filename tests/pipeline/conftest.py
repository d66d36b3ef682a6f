"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def scheduler():
    """An in-process cluster (threads): the tasks, keys and streaming are as on a real one."""
    from distributed import LocalCluster

    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)  # the worker plugin set it to 1
