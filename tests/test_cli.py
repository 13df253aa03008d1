"""The installed `archnb` console script."""

import shutil
import subprocess


def run(*args):
    return subprocess.run([shutil.which("archnb"), *args], capture_output=True, text=True)


def test_presets_table_and_detail():
    table = run("presets")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[0] == "preset"
    detail = run("presets", "--preset", "smollm2-135m")
    assert detail.returncode == 0 and "134,515,008" in detail.stdout


def test_bad_preset_is_one_clear_line():
    res = run("presets", "--preset", "no-such-preset")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().startswith("archnb presets: error: unknown preset 'no-such-preset'")
    assert "Traceback" not in res.stderr


def test_streetmath_command_and_module_agree(tmp_path):
    import json
    import sys
    from tiny_models import save_tiny_llama

    model = save_tiny_llama(tmp_path / "tiny", n_layers=2, hidden_size=16, heads=2, kv_heads=1)
    args = [
        "--model",
        str(model),
        "--num-layers",
        "1",
        "--dataset",
        "generated",
        "--limit",
        "3",
        "--max-tokens",
        "4",
        "--no-progress",
    ]
    a = run("streetmath", *args, "--output", str(tmp_path / "a.jsonl"))
    b = subprocess.run(
        [sys.executable, "-m", "archnb", "streetmath", *args, "--output", str(tmp_path / "b.jsonl")],
        capture_output=True,
        text=True,
    )
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert "3 questions: 3 answered, 0 failed" in a.stdout and "3 questions: 3 answered, 0 failed" in b.stdout
    keep = ("id", "response", "completion_tokens", "judgement", "archnb_judgement")
    rows = [
        [{k: json.loads(line)[k] for k in keep} for line in (tmp_path / f"{n}.jsonl").read_text().splitlines()[:3]]
        for n in "ab"
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 3
    again = run("streetmath", *args, "--output", str(tmp_path / "a.jsonl"))
    assert again.returncode == 2 and "already holds results" in again.stderr and "Traceback" not in again.stderr
