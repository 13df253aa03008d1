"""Record a notebook's outputs from a real run: execute the cells its tests execute (the `slow` ones too) at full size
(`FULL = True` after its cell tagged `parameters`, papermill's tag; the saved source keeps `FULL = False`, the size the
tests run), keep the stored outputs of the cells the tests skip (`notest`, `gpu`), drop progress bars from the new
outputs (stderr text that is not a bar stays), save the state of the widgets the outputs show in the notebook's
metadata (as JupyterLab's "Save Widget State" does, so they are drawn when the notebook opens without running), and
write the notebook back only when every cell ran (then run `nbdev_clean` yourself).

    python tools/record_notebook.py nbs/09b_evaluate.ipynb [--reduced]
"""

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path


def skipped_flags() -> set[str]:
    "The flags whose cells the test command skips (settings.ini's tst_flags less `slow`, which it runs)."
    from nbdev.config import get_config

    return set(get_config().tst_flags.split()) - {"slow"}


def skipped(cell, flags: set[str]) -> bool:
    "True for a cell nbdev_test skips: its rule in `nbdev.test.test_nb` (a closure there), on nbdev's own directives."
    from nbdev.process import extract_directives

    if cell.cell_type != "code" or "nbdev_export(" in cell.source:
        return True
    directives = extract_directives(cell, remove=False)
    return directives.get("eval:", [""])[0].lower() == "false" or bool(flags & directives.keys())


def skipped_or_cleared(cell, flags: set[str]) -> bool:
    "execnb's preproc: True skips the cell; a cell that runs starts empty (execnb keeps old outputs if it shows none)."
    if skipped(cell, flags):
        return True
    cell.outputs = []
    return False


def parameters_cell(nb, path: Path):
    "The notebook's one cell tagged `parameters` (it must set FULL), or None when it has none (a study of one size)."
    tagged = [c for c in nb.cells if "parameters" in (c.get("metadata") or {}).get("tags", [])]
    if len(tagged) > 1:
        raise SystemExit(f"record_notebook: {path}: {len(tagged)} cells are tagged parameters; keep one")
    if tagged and not re.search(r"^FULL\s*=", tagged[0].source, re.M):
        raise SystemExit(f"record_notebook: {path}: the cell tagged parameters sets no FULL (the study's size)")
    return tagged[0] if tagged else None


_PROGRESS_BAR = re.compile(r"\|.*\| *\d+/\d+ \[[^\]]*(it/s|s/it|\?it/s)[^\]]*\]")


def without_progress_bars(cell) -> None:
    "Drop progress bars (tqdm's stderr lines) from a cell's outputs, keeping any other stderr text, such as warnings."
    kept = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
            shown = [line.split("\r")[-1] for line in text.split("\n")]  # what a terminal shows of each line
            out["text"] = "\n".join(line for line in shown if line.strip() and not _PROGRESS_BAR.search(line))
            if not out["text"]:
                continue
            out["text"] += "\n"
        kept.append(out)
    cell["outputs"] = kept


WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


def shown_widget_ids(nb) -> list[str]:
    "The model ids of the widgets the notebook's outputs show, in order."
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    return [o["data"][WIDGET_VIEW]["model_id"] for o in outputs if WIDGET_VIEW in o.get("data", {})]


def save_widget_state(nb, path: Path) -> None:
    "Store the state of the shown widgets (and the widgets they hold) in the metadata; drop it when none is shown."
    nb.metadata.pop("widgets", None)
    ids = shown_widget_ids(nb)
    if not ids:
        return
    from ipywidgets.embed import dependency_state
    from ipywidgets.widgets.widget import _instances

    lost = [i for i in ids if i not in _instances]
    if lost:  # a skipped cell's stored output shows a widget this run never made: it could not be drawn
        raise SystemExit(f"record_notebook: {path}: outputs show widgets this run did not make: {lost}")
    state = dependency_state([_instances[i] for i in ids], drop_defaults=True)
    nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": state}}


def record(path: Path, full: bool) -> str:
    "Run the notebook in its own folder and write it back with the new outputs; leave it untouched on any error."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell

    flags = skipped_flags()
    nb = read_nb(path)
    parameters = parameters_cell(nb, path)
    os.chdir(path.parent)
    shell = CaptureShell(path=path.parent)
    written = parameters.source if parameters else None
    if parameters and full:
        parameters.source = f"{written}\nFULL = True  # tools/record_notebook.py: the full size"
    try:
        shell.run_all(nb, exc_stop=True, preproc=lambda cell: skipped_or_cleared(cell, flags))
    finally:
        if parameters:
            parameters.source = written  # the saved notebook keeps the size the tests run
    for cell in nb.cells:
        if not skipped(cell, flags):  # a skipped cell's stored outputs stay as they were
            without_progress_bars(cell)  # progress bars are for a live kernel: recorded, they are stderr noise
    save_widget_state(nb, path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".ipynb", delete=False) as tmp:
        pass
    try:
        write_nb(nb, tmp.name)
        os.replace(tmp.name, path)  # atomic: a failed run above raised before anything was written
    finally:
        Path(tmp.name).unlink(missing_ok=True)  # a failed write leaves no stray notebook beside the real one
    if parameters is None:
        return "as written (no cell tagged parameters: the study has one size)"
    return "at full size (FULL = True)" if full else "at CI size (FULL as the parameters cell sets it)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebook", type=Path)
    p.add_argument("--reduced", action="store_true", help="run at CI's size instead (the parameters cell as written)")
    args = p.parse_args()
    if not args.notebook.is_file():
        raise SystemExit(f"record_notebook: no such notebook: {args.notebook}")
    size = record(args.notebook.absolute(), full=not args.reduced)
    print(f"recorded {args.notebook} {size}; now run nbdev_clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
