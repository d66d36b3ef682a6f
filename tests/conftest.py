"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: ../shared beside the checkout (CI clones main with shared/ beside it);
#: RADFLOW_SHARED overrides it.
SHARED = Path(os.environ.get("RADFLOW_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared``; tests that need it skip with the reason when it is absent."""
    if not (SHARED / "ibsi" / "README.md").is_file():
        pytest.skip(f"IBSI reference data not found at {SHARED} (set RADFLOW_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def ibsi_dir(shared_dir) -> Path:
    return shared_dir / "ibsi"


@pytest.fixture(autouse=True, scope="module")
def _environment_restored():
    """Each test module leaves os.environ as it found it. Dask's nannies write their pre-spawn
    environment (MALLOC_TRIM_THRESHOLD_ ...) into the process that starts a LocalCluster, so a
    module that starts one would change the workers of the next module's clusters."""
    saved = dict(os.environ)
    yield
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch):
    """A fixed pseudonymisation key, so no test touches the user's key file."""
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "radflow-test-key")


@pytest.fixture(autouse=True)
def _sitk_global_tolerances():
    """Restore SimpleITK's process-wide geometry tolerances after each test.

    PyRadiomics' extractor sets them (from ``geometryTolerance``) and never
    restores them, which would leak into every later test of the session.
    """
    import SimpleITK as sitk

    coordinate = sitk.ProcessObject.GetGlobalDefaultCoordinateTolerance()
    direction = sitk.ProcessObject.GetGlobalDefaultDirectionTolerance()
    yield
    sitk.ProcessObject.SetGlobalDefaultCoordinateTolerance(coordinate)
    sitk.ProcessObject.SetGlobalDefaultDirectionTolerance(direction)
