"""The README stays true: set-up reads top to bottom and CI runs its test command; every snippet in it is run here and
what it says it prints is compared with what it prints; the preset table is the presets' own numbers."""

import doctest
import os
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archnb.config import human, presets_table

SNIPPET = re.compile(r"^```(python|sh)\n(.*?)\n```", flags=re.S | re.M)


def readme(repo) -> str:
    return (repo / "README.md").read_text()


def set_up_section(text: str) -> str:
    return text.split("## Set up and run", 1)[1].split("\n## ", 1)[0]


def snippets(text: str, kind: str) -> list[str]:
    "The README's code blocks of one kind, in order."
    return [code for k, code in SNIPPET.findall(text) if k == kind]


def test_set_up_reads_top_to_bottom_and_ci_runs_the_test_command(repo):
    text = readme(repo)
    setup = set_up_section(text)
    blocks = snippets(setup, "sh")
    assert len(blocks) == 3 and all("\n" not in b for b in blocks)
    torch_cpu, demo, tests = blocks
    assert torch_cpu.startswith("pip install torch ") and "download.pytorch.org/whl/cpu" in torch_cpu
    assert "archnb demo" in demo
    assert "test_notebooks.py --flags slow" in tests and "pytest" in tests
    assert setup.index("apt-get install -y chromium") < setup.index(tests)  # the browser test's need, said before
    ci = (repo / ".ci" / "run").read_text()
    assert "readme_torch=$(grep -m1 '^pip install torch ' README.md)" in ci  # CI runs the README's torch line too
    extract = re.search(r"test_cmd=\$\((awk .*README\.md)\)", ci).group(1)
    got = subprocess.run(["bash", "-c", extract], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    assert got == tests
    assert ci.index("torch==2.13.0") < ci.index("test_cmd")
    assert "apt-get install -y -q chromium" in ci


def readme_preset_rows(text: str) -> list[list[str]]:
    "The rows of the README's preset table, as cells."
    table = text.split("| preset | params |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in table]


def test_readme_preset_table_is_the_presets_own(repo):
    quoted = {row[0]: row for row in readme_preset_rows(readme(repo))}
    table = presets_table()
    assert list(quoted) == table.preset.tolist()  # `archnb presets` lists them in the README's order
    for r in table.to_dict("records"):
        heads = str(r["heads"]) if r["kv_heads"] == r["heads"] else f"{r['heads']} ({r['kv_heads']})"
        want = [
            r["preset"],
            human(r["params"]),
            str(r["layers"]),
            heads,
            str(r["width"]),
            str(r["context"]),
            r["norm/pos/mlp"],
        ]
        assert quoted[r["preset"]] == want, r["preset"]


def test_readme_images_exist_and_are_small(repo):
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme(repo))
    assert images
    for path in images:
        data = (repo / path).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) < 300_000, path


def test_every_python_snippet_is_checked(repo):
    "Python blocks are doctests (their printed output is compared), except the sweep, which a test below runs."
    plain = [s for s in snippets(readme(repo), "python") if ">>>" not in s]
    assert len(plain) == 1 and "sweep(base" in plain[0]


@pytest.mark.slow
def test_readme_python_examples_print_what_they_say(repo, tmp_path, monkeypatch):
    "Every >>> example, in README order and one namespace, in a fresh folder: outputs compared as doctest does."
    monkeypatch.chdir(tmp_path)
    examples = "\n".join(s for s in snippets(readme(repo), "python") if ">>>" in s)
    test = doctest.DocTestParser().get_doctest(examples, {}, "README.md", str(repo / "README.md"), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0 and len(test.examples) > 20, "".join(out)


@pytest.mark.slow
def test_readme_sweep_example_as_written(repo, tmp_path, monkeypatch):
    "The sweep example, local and on Ray, with the default runs folder: runs land in ./runs and are found again."
    monkeypatch.chdir(tmp_path)
    scope = {}
    code = next(s for s in snippets(readme(repo), "python") if "sweep(base" in s)
    try:
        exec(code, scope)
    finally:
        import ray

        ray.shutdown()
    res = scope["res"]
    assert res.table.status.tolist() == ["completed"] * 4 and len(res.skipped) == 2
    assert all("n_embd=64 must be divisible by n_head=3" in s["reason"] for s in res.skipped)
    assert sorted(p.name for p in (tmp_path / "runs" / "sweep-heads").iterdir()) == [
        "n_head=2,n_kv_head=1",
        "n_head=2,n_kv_head=2",
        "n_head=4,n_kv_head=1",
        "n_head=4,n_kv_head=2",
        "n_layer=1",
        "n_layer=2",
    ]
    again = scope["sweep"](
        scope["base"], {"n_layer": [1, 2]}
    )  # the Ray runs are read back from ./runs, not trained again
    assert all(r["status"] == "completed" for r in again.records)
    assert not any(p.name.endswith("-v2") for p in (tmp_path / "runs" / "sweep-heads").iterdir())


def shell_commands(text: str) -> list[str]:
    "Every command of the README's shell blocks, in order, except the installs (which .ci/run performs)."
    lines = [line for block in snippets(text, "sh") for line in block.splitlines()]
    commands = [line.split("  #")[0].strip() for line in lines]
    return [
        c.split(" && ")[-1] for c in commands if not c.startswith("pip install torch ") and "test_notebooks" not in c
    ]


def demo_disk_mb(out: str) -> float:
    "The megabytes the demo says its folder holds ('disk: 29.4MB under ...'); infinite when it does not say."
    said = re.search(r"^disk: ([0-9.]+)([KMG])B under", out, re.M)
    return float(said[1]) * {"K": 1e-3, "M": 1.0, "G": 1e3}[said[2]] if said else math.inf


def claims(cwd: Path) -> dict:
    "What the README says each command prints or writes, keyed by the command's start: (check of stdout, of files)."
    return {
        "archnb demo": lambda out: "norm" in out
        and (cwd / "runs/demo/report.md").is_file()
        and (cwd / "runs/demo/table.csv").is_file()
        and demo_disk_mb(out) < 100  # "about 90 MB": the kept weights do not depend on the steps
        and not list((cwd / "runs/demo").rglob("optimizer.pt")),
        "archnb presets --preset smollm2-135m": lambda out: "total" in out and "134,515,008" in out,
        "archnb bench --preset tiny": lambda out: "GPT2LMHeadModel" in out and "_vs_twin_" in out,
        "archnb bench-generate --model smollm2-135m-instruct": lambda out: "from street_math_test.jsonl" in out
        and re.search(r"^ *generate_batch +[\d.,]+ +±\d+% +[\d,]+ +[\d.,]+ +8 +[\d.]+×$", out, re.M) is not None,
        "archnb train --preset tiny --corpus streetmath --max-steps 60 ": lambda out: "completed" in out
        and (cwd / "runs/tiny/checkpoint-0000060").is_dir(),
        "archnb train --preset tiny --corpus streetmath --max-steps 120 ": lambda out: "completed" in out
        and (cwd / "runs/tiny/checkpoint-0000120").is_dir()
        and "resumed" in (cwd / "runs/tiny/checkpoint-0000120/training_state.json").read_text(),
        "torchrun --standalone --nproc_per_node 2": lambda out: re.search(r"world_size\s+2\b", out) is not None
        and (cwd / "runs/ddp/checkpoint-0000020").is_dir(),
        "archnb streetmath --model smollm2-135m-instruct": None,  # two commands: told apart below
        "archnb streetmath --protocol archnb": lambda out: "10 questions: 10 answered, 0 failed" in out,
        "archnb streetmath --provider openai": lambda out: "5 questions: 5 answered, 0 failed" in out,
        "archnb streetmath rescore": lambda out: len(list((cwd / "rescored").glob("*.jsonl"))) == 3,
        "archnb streetmath table": lambda out: any((cwd / "tables").glob("*.tex"))
        and any((cwd / "tables").glob("*.md")),
        "archnb streetmath export": lambda out: (cwd / "results/smol.parquet").is_file(),
        "python -c \"import datasets;": lambda out: out.strip() == "20",
        "archnb lm-eval --model smollm2-135m-instruct": lambda out: "archnb_good_approximation" in out
        and len(list((cwd / "lm-eval").rglob("samples_streetmath_hint_*.jsonl"))) == 1,
        "archnb export runs/tiny --to gguf runs/tiny.gguf": lambda out: "llama.cpp's gpt2 architecture" in out
        and (cwd / "runs/tiny.gguf").is_file(),
        "archnb export runs/tiny --to hf runs/tiny-hf": lambda out: "GPT2LMHeadModel" in out
        and (cwd / "runs/tiny-hf/config.json").is_file(),
    }


def smol_claim(command: str):
    "The first SmolLM2 run answers twenty questions; the resumed one finds nothing left to ask."
    if "--resume" in command:
        return lambda out: "20 questions: 20 answered, 0 failed" in out and "(0 asked in this run)" in out
    return lambda out: "20 questions: 20 answered, 0 failed" in out


@pytest.mark.slow
def test_readme_commands_do_what_they_say(repo, tmp_path):
    "Every shell command in the README, in order, in one fresh folder (a fake OpenAI server stands in for one)."
    sys.path.insert(0, str(repo / "tests"))
    from fake_openai import serve_fake_openai

    published = repo.parent / "shared" / "streetmath" / "street_math_test.jsonl"
    shutil.copy(published, tmp_path / "street_math_test.jsonl")
    from archnb.streetmath import load_streetmath

    answers = {r["prompt"]: r["exact_value"] for r in load_streetmath(str(published))}
    server, base_url, fake = serve_fake_openai(answers, key="sk-readme", model="my-model")
    env = {**os.environ, "MY_KEY": "sk-readme"}
    known = claims(tmp_path)
    try:
        for command in shell_commands(readme(repo)):
            start = next((k for k in known if command.startswith(k)), None)
            assert start is not None, f"a README command with no stated claim to check: {command}"
            check = known[start] or smol_claim(command)
            run = command.replace("http://localhost:8000/v1", base_url)
            # CI size: the demo's twelve runs at 20 steps (its full-size figures are nbs/07_experiment's outputs)
            run = re.sub(r"^archnb demo$", "archnb demo --steps 20", run)
            res = subprocess.run(
                ["bash", "-c", run], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
            )
            assert res.returncode == 0, f"{command}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            assert check(res.stdout), f"{command} did not print what the README says:\n{res.stdout[-3000:]}"
    finally:
        server.shutdown()
    assert len(fake.bodies) >= 5 and all(b["model"] == "my-model" for b in fake.bodies)
