"""Run every notebook's tests as `nbdev_test` does, one notebook at a time, each in a fresh process, printing each
notebook's name, result and time as it finishes; exit 1 when any fails or none is found.

    python tools/test_notebooks.py [--flags slow] [--timeout 1800] [NOTEBOOK ...]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path


def notebooks(names: list[str]) -> list[Path]:
    "The notebooks nbdev_test would test (settings.ini's nbs_path, recursively), or the named ones, which must exist."
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob

    if not names:
        return sorted(Path(p).absolute() for p in nbglob(as_path=True))
    missing = [n for n in names if not Path(n).is_file()]
    if missing:
        raise SystemExit(f"test_notebooks: no such notebook: {', '.join(missing)} (under {get_config().nbs_path})")
    return [Path(n).absolute() for n in names]


def run_one(nb: str, flags: str) -> int:
    "Test one notebook in this process (nbdev's own test_nb, with settings.ini's skip flags)."
    from nbdev.config import get_config
    from nbdev.test import test_nb

    cfg = get_config()
    ok, _ = test_nb(Path(nb), skip_flags=cfg.tst_flags.split(), force_flags=flags.split(), basepath=cfg.config_path)
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="*", help="notebooks to test (default: all of them)")
    p.add_argument("--flags", default="", help="test flags to run that are normally skipped, e.g. 'slow'")
    p.add_argument("--timeout", type=float, default=1800, help="seconds one notebook may take (default 1800)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return run_one(args.one, args.flags)
    found = notebooks(args.paths)
    if not found:
        raise SystemExit("test_notebooks: no notebooks found")
    failed, start = [], time.perf_counter()
    for nb in found:
        t0, name = time.perf_counter(), nb.relative_to(Path.cwd()) if nb.is_relative_to(Path.cwd()) else nb
        try:
            res = subprocess.run(
                [sys.executable, __file__, "--one", str(nb), "--flags", args.flags],
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            ok, detail = res.returncode == 0, res.stderr
        except subprocess.TimeoutExpired:
            ok, detail = False, f"timed out after {args.timeout:.0f} s\n"
        print(f"{'ok    ' if ok else 'FAILED'} {time.perf_counter() - t0:7.1f} s  {name}", flush=True)
        if not ok:
            failed.append(str(name))
            sys.stderr.write(detail[-20000:])
    print(
        f"{len(found) - len(failed)} of {len(found)} notebooks passed in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
