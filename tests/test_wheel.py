"""`pip install .` (not editable) gives a package that finds its built-in presets."""
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path


def tracked_copy(repo: Path, dest: Path) -> Path:
    "Copy the files git tracks (as a fresh clone has them) to `dest`."
    files = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / f, dest / f)
    return dest


def test_wheel_in_fresh_venv_lists_presets(repo, tmp_path):
    src = tracked_copy(repo, tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("archnb-*.whl"))
    env_dir = tmp_path / "venv"
    # the venv sees the already-installed dependencies (torch, transformers) but gets its own archnb from the wheel
    venv.EnvBuilder(with_pip=True, system_site_packages=True).create(env_dir)
    py, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    subprocess.run([py, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    probe = ("import json, archnb, archnb.config as c; "
             "print(json.dumps({'file': archnb.__file__, 'dir': str(c.builtin_presets_dir()), 'presets': c.list_presets()}))")
    out = subprocess.run([py, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    assert Path(got["file"]).is_relative_to(env_dir), got["file"]
    assert Path(got["dir"]) == Path(got["file"]).parent / "presets"
    assert sorted(got["presets"], key=str.lower) == sorted((p.stem for p in (repo / "presets").glob("*.json")), key=str.lower)
    table = subprocess.run([bin_dir / "archnb", "presets"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert any(line.split()[:2] == ["smollm2-135m", "135M"] for line in table.splitlines())
