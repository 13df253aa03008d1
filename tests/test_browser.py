"""The widgets in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

Run All of `nbs/10_widgets.ipynb` must leave no error output in any cell; then each widget is driven by clicks and
typing as a person would (the picker's error placement, a sweep run to the end, a sweep stopped during its first run,
the StreetMath panel on a tiny local model stopped part-way), with a screenshot at each step. The screenshots go to a
new folder under `$ARCHNB_ARTIFACTS` (default `artifacts/` in the repository), whose path the test prints. Slow
(JupyterLab start-up plus running the notebook). Set ARCHNB_SCREENSHOTS=docs/images to refresh the README's
screenshots from this run.
"""

import ast
import contextlib
import json
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
from archnb.plots import _DPI, _SAVE_DPI

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
README_SHOTS = ("preset-picker.png", "sweep-completed.png", "sweep-stopped.png", "streetmath-panel.png")
UNDRAWN_WIDGET = "Error displaying widget|model not found|Loading widget"  # Lab's words for a widget it did not draw
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trust_args(root: Path, notebooks) -> list[str]:
    "Sign `notebooks` as trusted with a notary kept under `root` (never the user's); the server flags that use it."
    from nbformat import read
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary(db_file=str(root / "notary.db"), secret_file=str(root / "notary-secret"))
    for path in notebooks:
        with open(path) as f:
            notary.sign(read(f, as_version=4))
    notary.store.close()
    return [f"--NotebookNotary.db_file={notary.db_file}", f"--NotebookNotary.secret_file={notary.secret_file}"]


@contextlib.contextmanager
def serve_lab(root: Path, auto_start_kernel: bool, trusted=()):
    """JupyterLab serving `root` on 127.0.0.1 with a fresh settings folder; yields (base URL, token). JupyterLab draws
    saved widgets only in trusted notebooks: those in `trusted` are signed, as `jupyter trust` would."""
    settings = root / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the DOM (so every output can be read); the notebook's kernel started without asking, or never
    (settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none", "autoStartDefaultKernel": auto_start_kernel})
    )
    toasts = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    toasts.mkdir(parents=True)  # no news toast over the widgets in the screenshots
    (toasts / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "doNotDisturbMode": true}')
    port, token = free_port(), secrets.token_hex(16)
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
            f"--LabApp.user_settings_dir={root / 'lab-settings'}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            *trust_args(root, trusted),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited: {(root / 'lab.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start in 2 minutes")
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def lab(repo, tmp_path):
    "JupyterLab serving a copy of the widgets notebook (so autosave never touches nbs/); yields its URL."
    (tmp_path / "nbs").mkdir()
    shutil.copy(repo / "nbs" / "10_widgets.ipynb", tmp_path / "nbs" / "10_widgets.ipynb")
    shutil.copytree(repo / "tests", tmp_path / "tests")  # the notebook imports its test helpers from ../tests
    with serve_lab(tmp_path, auto_start_kernel=True) as (base, token):
        yield f"{base}/lab/tree/nbs/10_widgets.ipynb?token={token}"


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
    "Run > Run All Cells until the first picker is drawn, reloading the page when no cell ran or Lab drew no picker."
    # Lab can say "idle" before its kernel connection takes requests: Run All then marks nothing as running
    started = (
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    )
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    tries = []
    for attempt in range(1, attempts + 1):
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
            name = page_screenshot(page, folder, f"run-all-not-started-{attempt}.png")
            tries.append(f"try {attempt}: no cell ran ({name})")
            open_notebook(page, url)
            continue
        wait_until_run(page)
        try:
            params.wait_for(state="visible", timeout=30_000)
            return
        except PlaywrightTimeout:  # seen in CI: every cell ran, no error, the kernel idle, and no picker on the page
            name, errors = page_screenshot(page, folder, f"first-picker-not-shown-{attempt}.png"), error_texts(page)
            assert not errors, f"Run All ended in errors ({name} in {folder}): {errors}"
            tries.append(f"try {attempt}: the cells ran, the picker was not drawn ({name}; {undrawn_widgets(page)})")
            open_notebook(page, url)
    status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
    raise AssertionError(
        f"Run All Cells never drew the first picker in {attempts} tries, reloading the page between them (kernel "
        f"{status}; screenshots in {folder}): " + "; ".join(tries)
    )


def page_screenshot(page, folder: Path, name: str) -> str:
    "A screenshot of the page as it is, into this run's folder; its name."
    page.screenshot(path=str(folder / name))
    return name


def undrawn_widgets(page) -> list[str]:
    "What Lab shows in place of each widget it did not draw (empty when it drew them all)."
    return page.evaluate(
        "pattern => [...document.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText)"
        ".filter(text => new RegExp(pattern).test(text)).map(text => text.slice(0, 300))",
        UNDRAWN_WIDGET,
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
    "A sweep of two depths × two norms run to the end, then a longer one stopped during its first run."
    from playwright.sync_api import expect

    sweep = page.locator(".archnb-sweep").first
    run, stop = sweep.locator("button:text-is('Run')"), sweep.locator("button:text-is('Stop')")
    labelled(sweep, "name").fill("browser-full")
    labelled(sweep, "n_layer").fill("1, 2")
    labelled(sweep, "n_head").fill("")  # the notebook's own sweep also varies heads; this one varies depth and norm
    labelled(sweep, "max_steps").fill("6")
    labelled(sweep, "max_steps").press("Tab")
    expect(sweep).to_contain_text("4 runs valid (4 configurations × 1 seed)", timeout=30_000)
    run.click()
    expect(sweep).to_contain_text("4 completed, 0 skipped, 0 failed", timeout=300_000)
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
    expect(sweep).to_contain_text(re.compile(r"stopped at step \d+ of 60 of run 1; 0 of 4 completed"), timeout=120_000)
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
        run_all(page, lab, page.locator(".archnb-params").first, shots)  # returns once no cell is queued or running
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


# The recorded notebooks as a reader opens them: no cell is run. A display cell ends with an expression Jupyter shows;
# calls that return None (tests, prints, clicks) are not display cells.
NONE_RETURNING = set(
    "test_eq test_ne test_fail test_close test_is print join click sleep append extend update unlink mkdir rmtree "
    "write_text write_bytes shutdown start reset register".split()
)
READER_VIEWPORT = {"width": 1440, "height": 900}  # a common laptop screen; the file browser folded away
MIN_SHOWN_SHARE = 0.6  # a figure squeezed below this share of the width it was drawn for has unreadable text
# archnb saves figures at _SAVE_DPI and draws them for _DPI: a PNG is drawn for at least this share of its pixels,
# whatever width a cell declares for it (a declared 760 px does not make a 1,760-pixel figure readable)
DRAWN_PER_PIXEL = _DPI / _SAVE_DPI
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MEASURE_CELLS = """undrawn => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(p => !p.classList.contains('lm-mod-hidden'));
  return [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => {
    const outs = [...cell.querySelectorAll('.jp-OutputArea-output')];
    const visible = o => o.getBoundingClientRect().height > 4 && (o.innerText.trim() !== '' ||
                         o.querySelector('img, svg, canvas, table, .jupyter-widgets') !== null);
    return {
      shown: outs.filter(visible).length,
      stderr: outs.filter(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr')
                  .map(o => o.innerText.slice(0, 300)),
      broken: outs.filter(o => new RegExp(undrawn).test(o.innerText))
                  .map(o => o.innerText.slice(0, 300)),
      images: [...cell.querySelectorAll('.jp-OutputArea-output img')].filter(img => img.offsetParent !== null)
        .map(img => ({declared: parseFloat(img.getAttribute('width') || img.style.width) || 0,
                      natural: img.naturalWidth, shown: img.getBoundingClientRect().width})),
    };
  });
}"""


def shows_something(source: str) -> bool:
    "True when a cell ends with an expression Jupyter displays (a value, or a call that is not a test or a print)."
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("#|", "%", "!")))
    body = ast.parse(code).body
    if not body or not isinstance(body[-1], ast.Expr) or code.rstrip().endswith(";"):
        return False
    value = body[-1].value
    if isinstance(value, ast.Constant):
        return False
    if isinstance(value, ast.Call):
        called = value.func.id if isinstance(value.func, ast.Name) else getattr(value.func, "attr", "")
        return called not in NONE_RETURNING
    return True


def test_display_cells_are_found_by_what_they_end_with():
    assert shows_something("x = 1\nx") and shows_something("#| hide\nplot_frontier(t)") and shows_something("a.b[0]")
    assert not shows_something("x = 1") and not shows_something("test_eq(1, 1)") and not shows_something("fig;")
    assert not shows_something('print("a")') and not shows_something('"a docstring"') and not shows_something("")


def reading_problems(notebook: dict, cells: list[dict]) -> list[str]:
    "What a reader of the recorded notebook would miss: display cells drawn empty, stderr, figures squeezed."
    stored = notebook["cells"]
    if len(cells) != len(stored):
        return [f"JupyterLab drew {len(cells)} cells of {len(stored)}"]
    found = []
    for i, (cell, drawn) in enumerate(zip(stored, cells)):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and shows_something(source) and not drawn["shown"]:
            found.append(f"cell {i} ends with `{source.strip().splitlines()[-1][:60]}` but shows nothing")
        found += [f"cell {i} shows stderr: {text!r}" for text in drawn["stderr"]]
        found += [f"cell {i} shows a widget that did not draw: {text!r}" for text in drawn["broken"]]
        for img in drawn["images"]:
            drawn_for = max(img["declared"], img["natural"] * DRAWN_PER_PIXEL)
            if img["shown"] < MIN_SHOWN_SHARE * drawn_for:
                found.append(f"cell {i}: a figure drawn for {drawn_for:.0f} px is shown at {img['shown']:.0f} px")
    return found


def close_sessions(base: str, token: str):
    "Shut down any kernel JupyterLab started for the notebooks opened so far."
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}") as r:
        sessions = json.load(r)
    for s in sessions:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions/{s['id']}?token={token}", method="DELETE"))


def open_recorded(page, url: str, notebook: dict):
    "Open a notebook without running it; wait until its figures have loaded and its saved widgets are drawn."
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=60_000)
    if any(WIDGET_MIME in o.get("data", {}) for c in notebook["cells"] for o in c.get("outputs", [])):
        page.wait_for_selector(".jp-OutputArea-output .jupyter-widgets", timeout=60_000)
        page.wait_for_timeout(1_500)  # the rest of the saved widgets render in the same pass


SHOT_NOTEBOOKS = ("10_widgets", "prune_and_heal", "parameter_budgets")


def shoot_outputs(page, folder: Path, stem: str):
    "A screenshot of each drawn output area with a figure or a widget, named after the notebook and the cell."
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    cells = panel.locator(".jp-Notebook .jp-Cell")
    for i in range(cells.count()):
        area = cells.nth(i).locator(".jp-OutputArea")
        if area.locator("img:visible, .jupyter-widgets").count():
            shoot(area.first, folder, f"{stem}-cell{i:02d}.png")


def test_recorded_notebooks_read_well_in_chromium(repo, tmp_path, shots):
    """Every notebook opened in JupyterLab from its saved outputs: each display cell shows something (a saved widget
    is drawn from its saved state), no stderr text, no figure shown below 0.6 of the width it was drawn for."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium (.ci/run installs it)"
    from playwright.sync_api import sync_playwright

    shutil.copytree(repo / "nbs", tmp_path / "nbs", ignore=shutil.ignore_patterns("_proc", ".ipynb_checkpoints"))
    notebooks = sorted(p.relative_to(tmp_path) for p in (tmp_path / "nbs").rglob("*.ipynb"))
    found = {}
    # a reader who cloned the repository trusts the notebooks (10_widgets says how) to see their saved widgets
    trusted = [tmp_path / rel for rel in notebooks]
    with serve_lab(tmp_path, auto_start_kernel=False, trusted=trusted) as (base, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport=READER_VIEWPORT)
        page.on("dialog", lambda dialog: dialog.accept())
        for rel in notebooks:
            notebook = json.loads((tmp_path / rel).read_text())
            open_recorded(page, f"{base}/lab/tree/{rel.as_posix()}?reset&token={token}", notebook)
            if page.locator("#jp-left-stack:visible").count():  # fold the file browser away, as a reader would
                page.keyboard.press("Control+b")
                page.wait_for_timeout(500)
            problems = reading_problems(notebook, page.evaluate(MEASURE_CELLS, UNDRAWN_WIDGET))
            if problems:
                found[str(rel)] = problems
            if rel.stem in SHOT_NOTEBOOKS:
                shoot_outputs(page, shots, rel.stem)
            close_sessions(base, token)
        browser.close()
    report = "\n".join(f"{nb}:\n  " + "\n  ".join(p) for nb, p in found.items())
    assert not found, f"{len(found)} of {len(notebooks)} notebooks read badly (screenshots in {shots}):\n{report}"
