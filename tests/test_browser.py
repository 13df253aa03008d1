"""The widgets in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

Slow (JupyterLab start-up plus running the widgets notebook). Set ARCHNB_SCREENSHOTS=docs/images to refresh the
README's screenshots from this run.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from archnb.config import count_params, load_preset

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(repo, tmp_path):
    "JupyterLab serving a copy of the widgets notebook (so autosave never touches nbs/); yields its URL."
    shutil.copy(repo / "nbs" / "10_widgets.ipynb", tmp_path / "10_widgets.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--ServerApp.open_browser=False",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start in 2 minutes")
        yield f"{base}/lab/tree/10_widgets.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_all(page, params, attempts: int = 4):
    "Run > Run All Cells until the first picker shows (a click can land while Lab settles; rerunning is harmless)."
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        page.keyboard.press("Escape")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator("li[data-command='runmenu:run-all']").click()
        try:
            params.wait_for(state="visible", timeout=60_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the widgets notebook did not show a preset picker after {attempts} tries of Run All Cells")


def test_preset_picker_in_chromium(lab, tmp_path):
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium (.ci/run installs it)"
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(lab)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        params = page.locator(".archnb-params").first
        run_all(page, params)
        page.wait_for_function(
            "() => document.querySelectorAll('.jp-InputPrompt').length > 0 && "
            "![...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'))",
            timeout=600_000,
        )
        # after the notebook's own tests the first picker shows 'tiny' changed by hand; choose presets in the dropdown
        dropdown = page.locator(".widget-dropdown:has(label:text-is('preset')) select").first
        for name in ("small", "code-tiny"):
            dropdown.select_option(name)
            expect(params).to_have_text(f"{count_params(load_preset(name).arch)['total']:,}", timeout=30_000)
        picker = page.locator(".archnb-picker").first
        picker.scroll_into_view_if_needed()
        picker.screenshot(path=str(tmp_path / "preset-picker.png"))
        frontier = page.locator(".archnb-frontier").first
        frontier.scroll_into_view_if_needed()
        expect(frontier).to_be_visible()
        frontier.screenshot(path=str(tmp_path / "sweep-frontier.png"))
        assert (tmp_path / "preset-picker.png").stat().st_size > 5_000 and (
            tmp_path / "sweep-frontier.png"
        ).stat().st_size > 5_000
        out = os.environ.get("ARCHNB_SCREENSHOTS")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            for name in ("preset-picker.png", "sweep-frontier.png"):
                shutil.copy(tmp_path / name, Path(out) / name)
        browser.close()
