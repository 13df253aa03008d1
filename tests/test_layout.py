"""The house in order: each notebook imports only earlier ones, no line is over 120 characters, standard nbdev commands
leave the hand-written README alone, the notebook runner reports what it runs, the recorder runs what the tests run
and writes back only a notebook that ran, and `archnb --help` is quick."""

import ast
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MAX_LINE = 120


def notebook_modules(repo: Path) -> dict[str, str]:
    "module -> the notebook that exports it, in notebook order (sorted names, as nbdev and the index list them)."
    out = {}
    for nb in sorted((repo / "nbs").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            hit = re.search(r"^#\|\s*default_exp\s+(\S+)", "".join(cell["source"]), flags=re.M)
            if cell["cell_type"] == "code" and hit:
                out[hit.group(1)] = nb.stem
                break
    return out


MAX_MODULE_LINES = 900


def archnb_imports(path: Path) -> set[str]:
    "The archnb modules a generated module imports, at any depth: inside functions and `if` blocks too."
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            name = ("archnb." if node.level else "") + (node.module or "")
            if name.startswith("archnb."):
                found.add(name.split(".")[1])
            if name == "archnb." or node.module == "archnb":
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("archnb."))
    return found


def test_every_notebook_imports_only_earlier_ones(repo):
    order = notebook_modules(repo)
    position = {m: i for i, m in enumerate(order)}
    later = []
    for module, nb in order.items():
        for used in archnb_imports(repo / "archnb" / f"{module}.py") - {module}:
            assert used in position, f"{module} imports archnb.{used}, which no notebook exports"
            if position[used] >= position[module]:
                later.append(f"{nb} ({module}) imports {order[used]} ({used})")
    assert not later, "\n".join(later)


def test_import_graph_has_no_cycle(repo):
    graph = {m: archnb_imports(repo / "archnb" / f"{m}.py") - {m} for m in notebook_modules(repo)}
    done, active = set(), []

    def visit(m):
        assert m not in active, " -> ".join(active[active.index(m) :] + [m])
        if m in done:
            return
        active.append(m)
        for n in graph.get(m, ()):
            visit(n)
        active.pop()
        done.add(m)

    for m in graph:
        visit(m)


def _without_nbdev_all(lines: list[str]) -> list[tuple[int, str]]:
    "Numbered lines without the `__all__` list, which nbdev writes (wrapped at 120 after its 10-character prefix)."
    out, inside = [], False
    for i, line in enumerate(lines, 1):
        inside = inside or line.startswith("__all__ = [")
        if not inside:
            out.append((i, line))
        inside = inside and not line.rstrip().endswith("]")
    return out


def code_lines(repo: Path):
    "(where, line) for every line of code: generated modules, notebooks' code cells, tests and tools."
    for f in sorted((repo / "archnb").glob("*.py")):
        if f.name != "_modidx.py":
            yield from (
                (f"{f.relative_to(repo)}:{i}", line) for i, line in _without_nbdev_all(f.read_text().splitlines())
            )
    for nb in sorted((repo / "nbs").rglob("*.ipynb")):
        for c, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] == "code":
                yield from ((f"{nb.relative_to(repo)} cell {c}", line) for line in "".join(cell["source"]).splitlines())
    for f in sorted([*(repo / "tests").glob("*.py"), *(repo / "tools").glob("*.py")]):
        yield from ((f"{f.relative_to(repo)}:{i}", line) for i, line in enumerate(f.read_text().splitlines(), 1))


def test_no_line_of_code_is_over_120_characters(repo):
    long = [f"{where}: {len(line)} characters" for where, line in code_lines(repo) if len(line) > MAX_LINE]
    assert not long, f"{len(long)} lines over {MAX_LINE}:\n" + "\n".join(long[:40])


def test_standard_nbdev_commands_leave_the_readme_alone(repo, tmp_path):
    "No notebook renders README.md, so nbdev_readme's check (which nbdev_prepare and nbdev_docs run) writes nothing."
    cfg = configparser.ConfigParser()
    cfg.read(repo / "settings.ini")
    readme_nb = cfg["DEFAULT"]["readme_nb"]
    assert not (repo / "nbs" / readme_nb).exists(), f"settings.ini: readme_nb={readme_nb} would render README.md"
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".git", "runs", "*.egg-info", "__pycache__"))
    before = (copy / "README.md").read_bytes()
    for nb in (copy / "nbs").glob("*.ipynb"):
        nb.touch()  # every notebook newer than the README: what would trigger a render
    probe = "from nbdev.quarto import nbdev_readme; nbdev_readme.__wrapped__(chk_time=True)"
    res = subprocess.run([sys.executable, "-c", probe], cwd=copy, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (copy / "README.md").read_bytes() == before


def write_notebook(path: Path, *sources: str, stored: dict | None = None, tags: dict | None = None) -> Path:
    """A notebook of code cells with these sources; `stored` gives some cells (by index) outputs already recorded,
    `tags` some cells (by index) their tags."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"c{i}",
            "metadata": {"tags": (tags or {})[i]} if i in (tags or {}) else {},
            "outputs": (stored or {}).get(i, []),
            "source": source,
        }
        for i, source in enumerate(sources)
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_notebook_runner_names_each_notebook_and_fails_on_a_failure(repo, tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    good = str(write_notebook(nbs / "good.ipynb", "assert 1 + 1 == 2"))
    bad = str(write_notebook(nbs / "bad.ipynb", "assert 1 + 1 == 3, 'arithmetic'"))
    runner = [sys.executable, str(repo / "tools" / "test_notebooks.py")]
    res = subprocess.run([*runner, good, bad], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert lines[0].startswith("ok") and lines[0].endswith("good.ipynb")
    assert lines[1].startswith("FAILED") and lines[1].endswith("bad.ipynb") and "arithmetic" in res.stderr
    assert "1 of 2 notebooks passed" in res.stdout
    failed = [line for line in res.stdout.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].endswith("bad.ipynb (AssertionError: arithmetic)"), res.stdout  # its error
    missing = subprocess.run([*runner, str(nbs / "nope.ipynb")], cwd=repo, capture_output=True, text=True)
    assert missing.returncode != 0 and "no such notebook" in missing.stderr


def test_notebook_runner_names_the_cell_a_timeout_stopped_and_runs_pytest_whatever_failed(repo, tmp_path):
    nbs, tests = tmp_path / "nbs", tmp_path / "suite"
    nbs.mkdir()
    tests.mkdir()
    slow = str(write_notebook(nbs / "slow.ipynb", "x = 1", "import time\ntime.sleep(600)"))
    (tests / "test_two.py").write_text("def test_passes():\n    pass\n\n\ndef test_fails():\n    assert False\n")
    runner = [sys.executable, str(repo / "tools" / "test_notebooks.py"), "--timeout", "30", "--pytest", str(tests)]
    res = subprocess.run([*runner, slow], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    summary = res.stdout.split("\nsummary\n", 1)[1].splitlines()
    assert summary[0].startswith("0 of 1 notebooks passed")
    assert summary[1].endswith("slow.ipynb (timed out after 30 s in cell #1: import time)"), summary
    assert summary[2].startswith("pytest: 1 failed, 1 passed"), summary
    assert summary[3].startswith("FAILED") and "test_fails" in summary[3], summary


def test_notebook_runner_removes_what_notebooks_and_pytest_leave_in_temporary_folders(repo, tmp_path):
    "A notebook or test that forgets its mkdtemp folder leaves nothing: CI's disk once filled up with them."
    nbs, tests, said = tmp_path / "nbs", tmp_path / "suite", tmp_path / "said"
    nbs.mkdir()
    tests.mkdir()
    forget = "import tempfile, pathlib\nd = pathlib.Path(tempfile.mkdtemp())\n"
    forget += "(d / 'big').write_bytes(bytes(3_000_000))\n"
    nb_code = forget.replace("3_000_000", "9_000_000") + f"open({str(said / 'nb')!r}, 'w').write(str(d))"
    nb = str(write_notebook(nbs / "forgets.ipynb", nb_code))
    (tests / "test_forgets.py").write_text(f"def test_forgets():\n    {forget.replace(chr(10), chr(10) + '    ')}"
                                           f"open({str(said / 'test')!r}, 'w').write(str(d))\n")
    said.mkdir()
    runner = [sys.executable, str(repo / "tools" / "test_notebooks.py"), "--pytest", str(tests), nb]
    res = subprocess.run(runner, cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    left = {p.name: Path(p.read_text()) for p in said.iterdir()}
    assert sorted(left) == ["nb", "test"] and not any(d.exists() for d in left.values()), left
    assert all(Path(tempfile.gettempdir()) in d.parents for d in left.values())
    assert "temporary files: forgets.ipynb left the most, 0.01 GB, all removed" in res.stdout, res.stdout


def test_notebook_recorder_runs_what_the_tests_run_and_leaves_a_failed_notebook_as_it_was(repo, tmp_path):
    kept = [{"name": "stdout", "output_type": "stream", "text": ["recorded earlier\n"]}]
    study = write_notebook(
        tmp_path / "study.ipynb",
        "# the size\nFULL = False",
        'print("size:", "full" if FULL else "CI")',
        '#| notest\nraise RuntimeError("the tests skip this cell")',
        '#| eval: false\nraise RuntimeError("never evaluated")',
        '#| slow\nprint("slow cell ran")',
        "import sys\nfrom tqdm.auto import tqdm\n\nfor _ in tqdm(range(3), desc='bar', disable=False):\n    pass\n"
        "print('a warning', file=sys.stderr)",
        "quiet = 1  # shows nothing now; its stored output is from an older run",
        stored={2: kept, 6: [{"name": "stderr", "output_type": "stream", "text": ["stale warning\n"]}]},
        tags={0: ["parameters"]},
    )
    recorder = [sys.executable, str(repo / "tools" / "record_notebook.py")]

    def printed(cell) -> str:
        return "".join("".join(o.get("text", "")) for o in cell["outputs"])

    for extra, size in (([], "size: full"), (["--reduced"], "size: CI")):
        res = subprocess.run([*recorder, str(study), *extra], cwd=repo, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        cells = json.loads(study.read_text())["cells"]
        assert size in printed(cells[1]) and "slow cell ran" in printed(cells[4])
        assert cells[2]["outputs"] == kept and cells[3]["outputs"] == []
        assert "".join(cells[0]["source"]) == "# the size\nFULL = False"  # the saved size is the one the tests run
        assert cells[0]["metadata"] == {"tags": ["parameters"]}
        assert [(o["name"], "".join(o["text"])) for o in cells[5]["outputs"]] == [("stderr", "a warning\n")]  # no bar
        assert cells[6]["outputs"] == []  # a cell that ran keeps only what it showed this time
    shows = write_notebook(
        tmp_path / "shows.ipynb",
        "import ipywidgets as W\n\nW.IntSlider(value=7)",
        "W.HBox([W.Label('heads'), W.IntText(value=3)])",
        "hidden = W.IntSlider(value=9)",
    )
    res = subprocess.run([*recorder, str(shows)], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    saved = json.loads(shows.read_text())
    view = "application/vnd.jupyter.widget-view+json"
    slider, box = [o["data"][view]["model_id"] for c in saved["cells"] for o in c["outputs"] if view in o["data"]]
    state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state[slider]["state"]["value"] == 7 and state[slider]["model_name"] == "IntSliderModel"
    children = [ref.removeprefix("IPY_MODEL_") for ref in state[box]["state"]["children"]]
    assert [state[c]["model_name"] for c in children] == ["LabelModel", "IntTextModel"]
    assert state[children[1]]["state"]["value"] == 3
    assert not any(s["state"].get("value") == 9 for s in state.values())  # a widget no output shows is not saved
    shows.unlink()
    one_size = write_notebook(tmp_path / "one_size.ipynb", 'print("one size")')
    res = subprocess.run([*recorder, str(one_size)], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "no cell tagged parameters" in res.stdout, res.stderr
    for name, sources, tags, why in (
        ("two.ipynb", ("FULL = False", "FULL = False"), {0: ["parameters"], 1: ["parameters"]}, "2 cells are tagged"),
        ("no_full.ipynb", ("SIZE = 3",), {0: ["parameters"]}, "sets no FULL"),
    ):
        bad = write_notebook(tmp_path / name, *sources, tags=tags)
        res = subprocess.run([*recorder, str(bad)], cwd=repo, capture_output=True, text=True, timeout=300)
        assert res.returncode != 0 and why in res.stderr, res.stderr
        bad.unlink()
    one_size.unlink()
    failing = write_notebook(tmp_path / "failing.ipynb", 'print("first")', 'assert 1 + 1 == 3, "arithmetic"')
    before = failing.read_bytes()
    res = subprocess.run([*recorder, str(failing)], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "arithmetic" in res.stderr
    assert failing.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "failing.ipynb",
        "study.ipynb",
    ]
    missing = subprocess.run([*recorder, str(tmp_path / "nope.ipynb")], cwd=repo, capture_output=True, text=True)
    assert missing.returncode != 0 and "no such notebook" in missing.stderr


def test_a_study_size_is_a_parameters_cell_at_the_top_and_shown(repo):
    """No notebook reads its size from the environment: FULL is set in one cell tagged `parameters`, before any slow
    cell, and the next code cell shows the size with StudySize."""
    studies = []
    for nb in sorted((repo / "nbs").rglob("*.ipynb")):
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        sources = ["".join(c["source"]) for c in cells]
        assert not any("ARCHNB_FULL_STUDY" in s for s in sources), nb
        sets_full = [i for i, s in enumerate(sources) if re.search(r"^FULL\s*=", s, re.M)]
        tagged = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
        assert sets_full == tagged and len(tagged) <= 1, (nb, sets_full, tagged)
        if tagged:
            at = tagged[0]
            assert not any("#| slow" in s for s in sources[:at]), f"{nb}: a slow cell runs before the parameters"
            assert sources[at + 1].count("StudySize(") == 1 and "FULL" in sources[at + 1], nb
            studies.append(nb.stem)
    assert len(studies) >= 7, studies


def test_archnb_help_is_quick_and_loads_no_torch(repo):
    probe = (
        "import sys, time, contextlib, io; t = time.perf_counter(); from archnb.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print(round(time.perf_counter() - t, 2), 'torch' in sys.modules)"
    )
    best = min(
        float(
            subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()[0]
        )
        for _ in range(3)
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()[1]
    assert loaded == "False" and best < 1.5, (best, loaded)
    cli = subprocess.run([shutil.which("archnb") or "archnb", "--help"], capture_output=True, text=True)
    assert cli.returncode == 0 and "streetmath" in cli.stdout


def _modules(repo: Path) -> list[Path]:
    return [f for f in sorted((repo / "archnb").glob("*.py")) if f.name != "_modidx.py"]


def test_no_module_runs_as_a_script_but_the_entry_point(repo):
    "`python -m archnb` is the one entry point: no library module has a `__main__` block."
    guarded = [
        f.name
        for f in _modules(repo)
        if f.name != "__main__.py"
        for node in ast.walk(ast.parse(f.read_text()))
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
    ]
    assert not guarded, guarded


def test_no_module_is_over_900_lines(repo):
    long = {f.name: n for f in _modules(repo) if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_no_name_is_defined_twice_at_module_level(repo):
    twice = []
    for f in _modules(repo):
        seen = {}
        for node in ast.parse(f.read_text()).body:
            names = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for n in names:
                if n in seen:
                    twice.append(f"{f.name}: {n} at lines {seen[n]} and {node.lineno}")
                seen.setdefault(n, node.lineno)
    assert not twice, "\n".join(twice)


def _patched(tree) -> list[tuple[str, str, int]]:
    "(class, method, line) of every `@patch`ed function: the class named by its `self` annotation."
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(ast.unparse(d) == "patch" for d in node.decorator_list):
            ann = node.args.args[0].annotation if node.args.args else None
            out.append((ast.unparse(ann) if ann is not None else "?", node.name, node.lineno))
    return out


def test_patch_only_narrates_a_class_of_the_same_notebook_and_never_overrides(repo):
    "`@patch` adds a method to a class defined in the same module, which neither it nor its bases already hold."
    import importlib

    wrong = []
    for f in _modules(repo):
        tree = ast.parse(f.read_text())
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        patched = _patched(tree)
        if not patched:
            continue
        module = importlib.import_module(f"archnb.{f.stem}")
        for cls, name, line in patched:
            if cls not in classes:
                wrong.append(f"{f.name}:{line}: {cls}.{name} patches a class defined elsewhere")
                continue
            body = {n.name for n in classes[cls].body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            inherited = [b.__name__ for b in getattr(module, cls).__mro__[1:] if name in vars(b)]
            if name in body or inherited:
                wrong.append(f"{f.name}:{line}: {cls}.{name} overrides {inherited or [cls]}")
    assert not wrong, "\n".join(wrong)


def test_a_name_used_across_modules_is_public_where_it_is_defined(repo):
    "A name another module imports is in its owner's `__all__`; private names never cross modules."
    import importlib

    crossing = []
    for f in _modules(repo):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and ((node.module or "").startswith("archnb.") or node.level):
                owner = (node.module or "").removeprefix("archnb.")
                if owner in ("", f.stem) or owner.startswith("_"):
                    continue
                public = importlib.import_module(f"archnb.{owner}").__all__
                crossing += [f"{f.stem} imports {owner}.{a.name}" for a in node.names if a.name not in public]
    assert not crossing, "\n".join(crossing)


def test_notebook_runner_gives_each_child_the_cores_other_work_leaves_idle(repo, tmp_path):
    "PyTorch's threads wait for a core another process holds: beside a busy loop a child gets fewer threads."
    nbs, tests = tmp_path / "nbs", tmp_path / "suite"
    nbs.mkdir()
    tests.mkdir()
    said = "import os, torch\nthreads = os.environ['OMP_NUM_THREADS'], torch.get_num_threads()\n"
    said += "print('threads', *threads, file=open({!r}, 'w'))"
    nb = str(write_notebook(nbs / "threads.ipynb", said.format(str(tmp_path / "nb"))))
    test = said.format(str(tmp_path / "pytest")).replace("\n", "\n    ")
    (tests / "test_threads.py").write_text(f"def test_threads():\n    {test}\n")
    runner = [sys.executable, str(repo / "tools" / "test_notebooks.py"), "--pytest", str(tests)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    fixed = subprocess.run([*runner, "--threads", "1", nb], cwd=repo, capture_output=True, text=True, env=env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert [(tmp_path / w).read_text() for w in ("nb", "pytest")] == ["threads 1 1\n"] * 2
    assert "threads: 1 for 2 of 2 runs" in fixed.stdout and "other work" not in fixed.stdout  # asked for, not load
    cores = os.cpu_count()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(1, cores - 1))]
    try:
        busy = subprocess.run([*runner, nb], cwd=repo, capture_output=True, text=True, env=env, timeout=300)
    finally:
        [h.kill() for h in hogs]
    assert busy.returncode == 0, busy.stdout + busy.stderr
    assert [(tmp_path / w).read_text() for w in ("nb", "pytest")] == ["threads 1 1\n"] * 2  # the one core left
    tagged = "[1 thread]  " in busy.stdout.splitlines()[0] and "(other work held cores" in busy.stdout
    assert tagged or cores == 1, busy.stdout
