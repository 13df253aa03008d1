"""The widgets in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

Run All of `nbs/10_widgets.ipynb` must leave no error output in any cell; then each widget is driven by clicks and
typing as a person would (the picker's error placement, a sweep run to the end, a sweep stopped during its first run,
the StreetMath panel on a tiny local model stopped part-way), with a screenshot at each step. The screenshots go to a
new folder under `$ARCHNB_ARTIFACTS` (default `artifacts/` in the repository), whose path the test prints. Slow
(JupyterLab start-up plus running the notebook). Set ARCHNB_SCREENSHOTS=docs/images to refresh the README's
screenshots from this run.
"""

import os
import re
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
README_SHOTS = ("preset-picker.png", "sweep-completed.png", "sweep-stopped.png", "streetmath-panel.png")
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(repo, tmp_path):
    "JupyterLab serving a copy of the widgets notebook (so autosave never touches nbs/); yields its URL."
    (tmp_path / "nbs").mkdir()
    shutil.copy(repo / "nbs" / "10_widgets.ipynb", tmp_path / "nbs" / "10_widgets.ipynb")
    shutil.copytree(repo / "tests", tmp_path / "tests")  # the notebook imports its test helpers from ../tests
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the DOM (so every output can be read), and the notebook's kernel started without asking
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none", "autoStartDefaultKernel": true}')
    toasts = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    toasts.mkdir(parents=True)  # no news toast over the widgets in the screenshots
    (toasts / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "doNotDisturbMode": true}')
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
            f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}",
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
        yield f"{base}/lab/tree/nbs/10_widgets.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def shots(repo, capsys):
    "A new folder for this run's screenshots (never one that exists already); its path is printed."
    root = Path(os.environ.get("ARCHNB_ARTIFACTS", repo / "artifacts"))
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = root / f"browser-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    with capsys.disabled():
        print(f"\nbrowser test screenshots: {folder}")
    return folder


def open_notebook(page, url: str):
    "Open the notebook and wait until its cells are drawn and its kernel says idle."
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)


def run_all(page, url: str, params, folder: Path, attempts: int = 4):
    "Run > Run All Cells until cells run, reloading the page when none starts; then wait for the first picker."
    # Lab can say "idle" before its kernel connection takes requests: Run All then marks nothing as running
    started = (
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    )
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        page.keyboard.press("Escape")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator("li[data-command='runmenu:run-all']").click()
        page.wait_for_timeout(1_000)
        kernel_dialog = page.locator(".jp-Dialog:has-text('Select Kernel') button:has-text('Select')")
        if kernel_dialog.count():  # Lab asks which kernel once in a fresh profile: the notebook's own
            kernel_dialog.first.click()
        try:
            page.wait_for_function(started, timeout=20_000)
        except PlaywrightTimeout:
            page.screenshot(path=str(folder / f"run-all-not-started-{attempt + 1}.png"))
            open_notebook(page, url)
            continue
        params.wait_for(state="visible", timeout=300_000)
        return
    errors = error_texts(page)
    status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
    raise AssertionError(
        f"Run All Cells ran no cell in {attempts} tries, reloading the page between them (kernel {status}; "
        f"screenshots run-all-not-started-N.png in {folder}); errors: {errors}"
    )


def wait_until_run(page):
    "Wait until no cell is queued or running."
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-InputPrompt').length > 0 && "
        "![...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'))",
        timeout=600_000,
    )


def error_texts(page) -> list[str]:
    "The end of every error output on the page."
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    return [text[-1500:] for text in errors.all_inner_texts()]


def no_error_outputs(page):
    "Every code cell ran (it has an execution count) and none shows an error."
    texts = error_texts(page)
    assert not texts, "cells ended in errors:\n" + "\n---\n".join(texts)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    unrun = [p for p in prompts if not re.search(r"\[\d+\]", p)]
    assert prompts and not unrun, f"{len(unrun)} of {len(prompts)} code cells did not run: {unrun[:5]}"


def shoot(locator, folder: Path, name: str):
    "A screenshot of one widget, into this run's folder."
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(folder / name))
    assert (folder / name).stat().st_size > 5_000, name


def labelled(scope, label: str):
    "The input of a widget row labelled `label` (a description or a Label beside it)."
    return scope.locator(
        f".widget-inline-hbox:has(> label:text-is('{label}')) input, "
        f".widget-hbox:has(> .widget-label:text-is('{label}')) input"
    ).first


def drive_picker(page, folder: Path):
    "Choose presets; type a bad head count: its message appears beside 'heads' in the words on screen; fix it."
    from playwright.sync_api import expect

    picker, params = page.locator(".archnb-picker").first, page.locator(".archnb-params").first
    dropdown = picker.locator(".archnb-row-preset select")
    for name in ("small", "code-tiny", "tiny"):
        dropdown.select_option(name)
        expect(params).to_have_text(f"{count_params(load_preset(name).arch)['total']:,}", timeout=30_000)
    heads = picker.locator(".archnb-row-n_head input")
    heads.fill("5")
    heads.press("Tab")
    error = picker.locator(".archnb-row-n_head .widget-html")
    expect(error).to_contain_text("width=192 must be divisible by heads=5", timeout=30_000)
    expect(picker.locator(".archnb-row-n_embd .widget-html")).to_have_text("")
    shoot(picker, folder, "picker-error.png")
    heads.fill("4")
    heads.press("Tab")
    expect(error).to_have_text("", timeout=30_000)
    expect(params).to_have_text(f"{count_params(load_preset('tiny').arch)['total']:,}", timeout=30_000)
    shoot(picker, folder, "preset-picker.png")


def drive_sweep(page, folder: Path):
    "A sweep of two depths run to the end, then a longer one stopped during its first run."
    from playwright.sync_api import expect

    sweep = page.locator(".archnb-sweep").first
    run, stop = sweep.locator("button:text-is('Run')"), sweep.locator("button:text-is('Stop')")
    labelled(sweep, "name").fill("browser-full")
    labelled(sweep, "n_layer").fill("1, 2")
    labelled(sweep, "max_steps").fill("6")
    labelled(sweep, "max_steps").press("Tab")
    expect(sweep).to_contain_text("2 runs valid", timeout=30_000)
    run.click()
    expect(sweep).to_contain_text("2 completed, 0 skipped, 0 failed", timeout=300_000)
    expect(run).to_be_enabled()
    expect(stop).to_be_disabled()
    expect(sweep.locator(".archnb-frontier")).to_be_visible()
    shoot(sweep, folder, "sweep-completed.png")
    shoot(sweep.locator(".archnb-frontier"), folder, "sweep-frontier.png")
    labelled(sweep, "name").fill("browser-stop")
    labelled(sweep, "max_steps").fill("60")
    labelled(sweep, "max_steps").press("Tab")
    run.click()
    expect(sweep.locator(".archnb-frontier")).to_be_hidden(timeout=30_000)  # the old results are cleared at once
    steps = sweep.locator(".widget-html").filter(has_text=re.compile(r"/60 steps"))
    expect(steps).to_have_text(re.compile(r"^([2-9]|[1-5]\d)/60 steps"), timeout=300_000)
    stop.click()
    expect(sweep).to_contain_text(re.compile(r"stopped at step \d+ of 60 of run 1; 0 of 2 completed"), timeout=120_000)
    expect(sweep).to_contain_text("stopped by the user at step")  # the reason, in the table
    expect(run).to_be_enabled()
    expect(stop).to_be_disabled()
    shoot(sweep, folder, "sweep-stopped.png")


def drive_streetmath(page, folder: Path):
    "The ready panel on the tiny local model: Run, Stop after the first questions; what was answered is kept."
    from playwright.sync_api import expect

    panel = page.locator(".archnb-streetmath").last
    run, stop = panel.locator("button:text-is('Run')"), panel.locator("button:text-is('Stop')")
    run.click()
    expect(panel).to_contain_text("tiny: 1 of 2 layers", timeout=120_000)
    answered = panel.locator(".widget-html").filter(has_text=re.compile(r"/400 questions"))
    expect(answered).to_have_text(re.compile(r"^([4-9]|\d\d+)/400 questions"), timeout=300_000)
    stop.click()
    expect(panel).to_contain_text(re.compile(r"stopped by the user after \d+ of 400"), timeout=120_000)
    expect(panel.locator("table.archnb-replies")).to_be_visible()
    expect(run).to_be_enabled()
    shoot(panel, folder, "streetmath-panel.png")


def test_widgets_in_chromium(lab, shots):
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium (.ci/run installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 2400})  # tall: a whole widget in one screenshot
        page.on("dialog", lambda dialog: dialog.accept())  # "leave this page?" when a reload is needed
        open_notebook(page, lab)
        run_all(page, lab, page.locator(".archnb-params").first, shots)
        wait_until_run(page)
        no_error_outputs(page)
        page.screenshot(path=str(shots / "after-run-all.png"))
        drive_picker(page, shots)
        drive_sweep(page, shots)
        drive_streetmath(page, shots)
        browser.close()
    out = os.environ.get("ARCHNB_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        for name in README_SHOTS:
            shutil.copy(shots / name, Path(out) / name)
