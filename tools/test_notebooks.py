"""Run every notebook's tests as `nbdev_test` does, one notebook at a time, each in a fresh process, printing each
notebook's name, result and time as it finishes (a notebook over --timeout is stopped, naming the cell it was
running); then, with --pytest, run pytest on the given folder whatever the notebooks did; end with one summary of
every failure and exit 1 when anything failed or no notebook was found. Each notebook and the pytest run get a
temporary folder of their own (TMPDIR), removed with what they left in it when they end, passed, failed or stopped,
and as many threads (OMP_NUM_THREADS) as other work leaves cores idle, measured as each starts (--threads fixes it).

    python tools/test_notebooks.py [--flags slow] [--timeout 1800] [--threads N] [--pytest tests] [NOTEBOOK ...]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
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


RUNNING = "test_notebooks: running cell #"  # a line the child writes to stderr as each cell starts


def announce_cells():
    "Make execnb say on stderr which cell starts, so that a notebook stopped by the timeout can name it."
    from execnb.shell import CaptureShell

    run_cell = CaptureShell.cell

    def cell(self, cell, *args, **kwargs):
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        sys.stderr.write(f"{RUNNING}{cell.idx_}: {first[:100]}\n")
        sys.stderr.flush()
        return run_cell(self, cell, *args, **kwargs)

    CaptureShell.cell = cell


def without_announcements(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.startswith(RUNNING))


def timed_out(err, timeout: float) -> str:
    "What a notebook stopped by the timeout was doing: the cell it was running, from the child's announcements."
    err = err.decode(errors="replace") if isinstance(err, bytes) else err or ""
    cells = [line[len(RUNNING) :] for line in err.splitlines() if line.startswith(RUNNING)]
    return f"timed out after {timeout:.0f} s" + (f" in cell #{cells[-1]}" if cells else " before its first cell")


def run_one(nb: str, flags: str) -> int:
    "Test one notebook in this process (nbdev's own test_nb, with settings.ini's skip flags)."
    from nbdev.config import get_config
    from nbdev.test import test_nb

    announce_cells()
    cfg = get_config()
    ok, _ = test_nb(Path(nb), skip_flags=cfg.tst_flags.split(), force_flags=flags.split(), basepath=cfg.config_path)
    return 0 if ok else 1


LEFT_BEHIND = {}  # what each child left in its temporary folder, in bytes, measured before the folder is removed


THREADS = {}  # name: the threads each child was given


def threads_for(name: str, fixed: int) -> dict:
    """The thread settings for one child: `fixed`, or the cores other work leaves idle now (so that PyTorch's threads
    do not wait on a core another process holds), or none where the caller set OMP_NUM_THREADS."""
    from archnb.runtime import threads_for_load

    threads = fixed or threads_for_load()
    if threads is None:
        return {}
    THREADS[name] = threads
    return {"OMP_NUM_THREADS": str(threads)}


@contextmanager
def child_environment(name: str, threads: int = 0):
    """An environment whose TMPDIR is a fresh folder, removed with all it holds (its size kept) when the child ends,
    with the child's threads (`threads_for`)."""
    from archnb.files import folder_bytes

    folder = tempfile.mkdtemp(prefix="archnb-t-")  # short: Ray puts socket paths under it, limited to 107 bytes
    try:
        yield {**os.environ, **threads_for(name, threads), "TMPDIR": folder}
    finally:
        LEFT_BEHIND[name] = folder_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)


ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Expired|Exit|Interrupt)\b(:|$)")


def error_line(detail: str) -> str:
    "The line that names a failed notebook's error (the last `SomeError: ...` line), for the summary."
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    named = [line for line in lines if ERROR_LINE.match(line)]
    return ((named or lines or ["no error output"])[-1])[:600]


def test_notebook(nb: Path, flags: str, timeout: float, threads: int = 0) -> tuple[bool, str]:
    "(passed, what went wrong) for one notebook, tested in a fresh process."
    with child_environment(nb.name, threads) as env:
        try:
            res = subprocess.run(
                [sys.executable, __file__, "--one", str(nb), "--flags", flags],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired as e:
            return False, timed_out(e.stderr, timeout)
    return res.returncode == 0, without_announcements(res.stderr)


def run_pytest(folder: str, threads: int = 0) -> tuple[bool, list[str]]:
    "(passed, its closing line and each FAILED/ERROR line) for `pytest -q folder`, its output shown as it comes."
    kept, last = [], ""
    with child_environment("pytest", threads) as env:
        cmd = [sys.executable, "-m", "pytest", "-q", folder]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            kept += [line.rstrip()] if line.startswith(("FAILED ", "ERROR ")) else []
            last = line.strip() or last
        passed = proc.wait() == 0
    return passed, [f"pytest: {last}", *kept]


def disk_lines() -> list[str]:
    "Who left the most temporary files (removed since) and the disk space left, which a failure may need to know."
    name, most = max(LEFT_BEHIND.items(), key=lambda kv: kv[1], default=("nothing", 0))
    free = shutil.disk_usage(tempfile.gettempdir()).free
    lines = [f"temporary files: {name} left the most, {most / 1e9:.2f} GB, all removed; {free / 1e9:.1f} GB free"]
    return lines + (["low disk: under 2 GB free, which can fail tests that write models"] if free < 2e9 else [])


def thread_tag(name: str) -> str:
    "`[1 thread]  ` where a child got fewer threads than the machine has cores, else nothing."
    n = THREADS.get(name)
    return f"[{n} thread{'s' * (n > 1)}]  " if n and n < (os.cpu_count() or 1) else ""


def thread_lines(fixed: int) -> list[str]:
    "How many threads the children got: fewer than the cores, unless `fixed`, says other work held some."
    counts = Counter(THREADS.values())
    if not counts:
        return ["threads: as OMP_NUM_THREADS says for every child"]
    said = ", ".join(f"{n} for {k}" for n, k in sorted(counts.items(), reverse=True))
    cores = os.cpu_count() or 1
    held = min(counts) < cores and not fixed
    held = " (other work held cores, so those ran slower than on an idle machine)" if held else ""
    return [f"threads: {said} of {len(THREADS)} runs, on {cores} cores{held}"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="*", help="notebooks to test (default: all of them)")
    p.add_argument("--flags", default="", help="test flags to run that are normally skipped, e.g. 'slow'")
    p.add_argument("--timeout", type=float, default=1800, help="seconds one notebook may take (default 1800)")
    p.add_argument("--pytest", default=None, metavar="FOLDER", help="then run pytest on FOLDER, whatever failed")
    p.add_argument("--threads", type=int, default=0, help="threads per notebook (default: the cores left idle)")
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
        ok, detail = test_notebook(nb, args.flags, args.timeout, args.threads)
        said = f"{'ok    ' if ok else 'FAILED'} {time.perf_counter() - t0:7.1f} s  {thread_tag(nb.name)}{name}"
        print(said, flush=True)
        if not ok:
            failed.append(f"{name} ({detail if detail.startswith('timed out') else error_line(detail)})")
            sys.stderr.write(detail[-20000:] + "\n")
            sys.stderr.flush()
    summary = [f"{len(found) - len(failed)} of {len(found)} notebooks passed in {time.perf_counter() - start:.0f} s"]
    summary += [f"failed: {name}" for name in failed]
    tests_ok = True
    if args.pytest:
        tests_ok, said = run_pytest(args.pytest, args.threads)
        summary += said
    summary += disk_lines() + thread_lines(args.threads)
    print("\nsummary\n" + "\n".join(summary), flush=True)
    return 0 if not failed and tests_ok else 1


if __name__ == "__main__":
    sys.exit(main())
