"""The report as a reader sees it: rendered by headless Chromium (Debian's ``chromium``).

The test set-up installs it (``apt-get install chromium``); without it the
test skips and says so. Chromium runs with no network use possible for the
page (its Content-Security-Policy allows data: images only), and:

- ``--dump-dom`` returns the DOM after the load event, where the page's
  script has written ``data-images="ok <n>"`` once every image decoded;
- ``--enable-logging=stderr`` shows console messages: none may be an error;
- ``--screenshot`` writes a PNG of the top of the page, checked to be a
  real rendering (not blank).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_html import study_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "headless Chromium not found (Makefile test set-up: "
        "apt-get install -y --no-install-recommends chromium)"
    )


def _run(browser: str, *args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [
        browser,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    browser = _browser()
    tmp = tmp_path_factory.mktemp("browser")
    report = study_report(tmp_path_factory)
    url = report.resolve().as_uri()
    dom = _run(
        browser,
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
        profile=tmp / "profile-dom",
    )
    shot = tmp / "screenshot.png"
    capture = _run(
        browser,
        f"--screenshot={shot}",
        "--window-size=1280,4000",
        "--virtual-time-budget=10000",
        url,
        profile=tmp / "profile-shot",
    )
    return dom, capture, shot


def test_every_image_decoded(rendered):
    dom, _, _ = rendered
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<body[^>]*data-images="([^"]*)"', dom.stdout)
    assert match, "the page's load script did not run"
    state, count = match.group(1).split(" ")
    assert state == "ok", f"images not decoded: {match.group(1)}"
    assert int(count) >= 10


def test_no_console_errors(rendered):
    dom, capture, _ = rendered
    for run in (dom, capture):
        bad = [
            line
            for line in run.stderr.splitlines()
            if "Uncaught" in line
            or "ERROR:CONSOLE" in line
            or ("CONSOLE" in line and "Content Security Policy" in line)
        ]
        assert not bad, bad[:5]


def test_sections_rendered(rendered):
    dom, _, _ = rendered
    for key in ("km", "heatmap", "qc", "validation", "td_auc"):
        section = re.search(rf'<section id="{key}">(.*?)</section>', dom.stdout, re.S)
        assert section, key
        assert "<img" in section.group(1), key


def test_screenshot(rendered):
    from PIL import Image, ImageStat

    _, capture, shot = rendered
    assert capture.returncode == 0 and shot.is_file(), capture.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 4000)
    # A rendered page: text and figures give contrast; a blank page has none.
    assert ImageStat.Stat(image).stddev[0] > 20
