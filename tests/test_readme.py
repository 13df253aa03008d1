"""The README stays true: two set-up commands, the one CI runs, and the preset sizes it quotes."""
import re
import subprocess

import pytest

from archnb.config import count_params, human, list_presets, load_preset


def set_up_section(text: str) -> str:
    return text.split("## Set up and run", 1)[1].split("\n## ", 1)[0]


def test_exactly_two_commands_and_ci_runs_the_second(repo):
    text = (repo / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", set_up_section(text), flags=re.S)
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    assert "archnb demo" in blocks[0]
    assert "nbdev_test" in blocks[1] and "pytest" in blocks[1]
    ci = (repo / ".ci" / "run").read_text()
    extract = re.search(r"test_cmd=\$\((awk .*README\.md)\)", ci).group(1)
    got = subprocess.run(["bash", "-c", extract], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    assert got == blocks[1]
    assert ci.index("torch==2.13.0") < ci.index("test_cmd")


def test_readme_preset_sizes_are_the_true_counts(repo):
    rows = re.findall(r"^\| ([\w.-]+) \| ([\d.]+[KMB]) \|", (repo / "README.md").read_text(), flags=re.M)
    quoted = dict(rows)
    assert set(quoted) == set(list_presets())
    for name, size in quoted.items():
        assert human(count_params(load_preset(name).arch)["total"]) == size, name


def test_readme_images_exist_and_are_small(repo):
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (repo / "README.md").read_text())
    assert images
    for path in images:
        data = (repo / path).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) < 300_000, path


def readme_python(repo, heading: str) -> str:
    "The python block under a README heading, exactly as written."
    section = (repo / "README.md").read_text().split(heading, 1)[1].split("\n#", 1)[0]
    return re.search(r"```python\n(.*?)\n```", section, flags=re.S).group(1)


@pytest.mark.slow
def test_readme_sweep_example_as_written(repo, tmp_path, monkeypatch):
    "The sweep example, local and on Ray, with the default relative runs folder: the runs land in ./runs and are found again."
    monkeypatch.chdir(tmp_path)
    scope = {}
    try: exec(readme_python(repo, "### Experiments, sweeps and reports"), scope)
    finally:
        import ray
        ray.shutdown()
    res = scope["res"]
    assert res.table.status.tolist() == ["completed"] * 4 and len(res.skipped) == 2
    assert all("n_embd=64 must be divisible by n_head=3" in s["reason"] for s in res.skipped)
    assert sorted(p.name for p in (tmp_path / "runs" / "sweep-heads").iterdir()) == [
        "n_head=2,n_kv_head=1", "n_head=2,n_kv_head=2", "n_head=4,n_kv_head=1", "n_head=4,n_kv_head=2", "n_layer=1", "n_layer=2"]
    again = scope["sweep"](scope["base"], {"n_layer": [1, 2]})   # the Ray runs are read back from ./runs, not trained again
    assert all(r["status"] == "completed" for r in again.records)
    assert not any(p.name.endswith("-v2") for p in (tmp_path / "runs" / "sweep-heads").iterdir())
