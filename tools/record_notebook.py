"""Record a notebook's outputs from a real run: execute the cells its tests execute (the `slow` ones too) at full size
(`ARCHNB_FULL_STUDY=1`), keep the stored outputs of the cells the tests skip (`notest`, `gpu`), and write the notebook
back only when every cell ran (then run `nbdev_clean` yourself).

    python tools/record_notebook.py nbs/09b_evaluate.ipynb [--reduced]
"""

import argparse
import os
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


def record(path: Path, full: bool) -> None:
    "Run the notebook in its own folder and write it back with the new outputs; leave it untouched on any error."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell

    if full:
        os.environ["ARCHNB_FULL_STUDY"] = "1"
    flags = skipped_flags()
    nb = read_nb(path)
    os.chdir(path.parent)
    shell = CaptureShell(path=path.parent)
    shell.run_all(nb, exc_stop=True, preproc=lambda cell: skipped(cell, flags))
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".ipynb", delete=False) as tmp:
        pass
    try:
        write_nb(nb, tmp.name)
        os.replace(tmp.name, path)  # atomic: a failed run above raised before anything was written
    finally:
        Path(tmp.name).unlink(missing_ok=True)  # a failed write leaves no stray notebook beside the real one


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebook", type=Path)
    p.add_argument("--reduced", action="store_true", help="run at CI's reduced size instead (ARCHNB_FULL_STUDY unset)")
    args = p.parse_args()
    if not args.notebook.is_file():
        raise SystemExit(f"record_notebook: no such notebook: {args.notebook}")
    record(args.notebook.absolute(), full=not args.reduced)
    print(f"recorded {args.notebook}; now run nbdev_clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
