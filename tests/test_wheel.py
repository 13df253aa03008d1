"""`pip install .` (not editable) gives a package that finds its built-in presets and lm-eval tasks, in a virtual
environment or not."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def tracked_copy(repo: Path, dest: Path) -> Path:
    "Copy the files git tracks (as a fresh clone has them) to `dest`."
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout.decode().split("\0")
    )
    for f in filter(None, files):
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / f, dest / f)
    return dest


def test_wheel_installs_and_lists_presets(repo, tmp_path):
    src = tracked_copy(repo, tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("archnb-*.whl"))
    # the wheel goes into a folder of its own, put first on the path of this very interpreter: its dependencies
    # (torch, transformers) come from the environment running the tests, a virtual environment or not
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    probe = (
        "import json, archnb, archnb.config as c, archnb.lmeval as e; "
        "print(json.dumps({'file': archnb.__file__, 'dir': str(c.builtin_presets_dir()), 'presets': c.list_presets(), "
        "'tasks': str(e.tasks_folder()), 'task_files': sorted(e.task_files())}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True, env=env
    ).stdout
    got = json.loads(out)
    assert Path(got["file"]).is_relative_to(target), got["file"]
    assert Path(got["dir"]) == Path(got["file"]).parent / "presets"
    assert Path(got["tasks"]) == Path(got["file"]).parent / "lm_eval_tasks"  # lm-eval's StreetMath tasks ship too
    shipped = [p.relative_to(got["tasks"]) for p in Path(got["tasks"]).rglob("*.*") if "__pycache__" not in p.parts]
    assert sorted(map(str, shipped)) == got["task_files"]
    assert sorted(got["presets"], key=str.lower) == sorted(
        (p.stem for p in (repo / "presets").glob("*.json")), key=str.lower
    )
    table = subprocess.run(
        [sys.executable, "-m", "archnb", "presets"], cwd=tmp_path, capture_output=True, text=True, check=True, env=env
    ).stdout
    assert any(line.split()[:2] == ["smollm2-135m", "135M"] for line in table.splitlines())
