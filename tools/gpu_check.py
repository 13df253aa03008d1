"""The repository's GPU check: in a few minutes on one GPU, with no network, it runs `archnb train` (a few steps of the
150M preset, bf16), `archnb bench --vs hf` (bf16, eager and compiled), `archnb bench-generate` (archnb's StreetMath
generator against transformers' `generate` with a dynamic and a static cache and `generate_batch`, on the same prompts
and model) and a short `archnb streetmath` run, both on a random SmolLM2-shaped model, then prints one table of what
it measured. Where no CUDA GPU is visible it says so and exits 0 without running anything.

    python tools/gpu_check.py [--out DIR] [--small] [--device cuda]

`--small` shrinks every step (the debug preset, a tiny model, a few prompts) so the script's own paths can be checked
on a CPU with `--device cpu`; its figures mean nothing. Ratios are measured in one run; absolute times depend on the
machine and say nothing on their own.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def no_gpu_reason(device: str) -> str | None:
    "Why this check cannot run here (None when it can)."
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if device == "cuda" and not torch.cuda.is_available():
        return f"no CUDA GPU is visible to torch {torch.__version__}"
    return None


def archnb(*args, timeout: int = 600) -> tuple[str, float]:
    "Run `python -m archnb ARGS` from the repository (stdout, seconds); a failure raises with its stderr's end."
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "archnb", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )
    if res.returncode != 0:
        raise RuntimeError(f"archnb {' '.join(map(str, args[:2]))} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return res.stdout, time.perf_counter() - start


def metric(text: str, name: str) -> float:
    "A `name   value` line of `archnb train`'s summary."
    hit = re.search(rf"^{re.escape(name)}\s+([-\d.,e+]+)", text, flags=re.M)
    return float(hit.group(1).replace(",", "")) if hit else float("nan")


def check_train(out: Path, small: bool, device: str) -> list[tuple]:
    "A few steps of `archnb train` on the 150M preset (debug with --small): tokens/s and MFU."
    preset, steps, batch = ("debug", 6, 4) if small else ("150M", 40, 32)
    text, secs = archnb(
        "train", "--preset", preset, "--corpus", "streetmath", "--tokenizer", "bytes", "--n-docs", 4000,
        "--out", out / "train", "--max-steps", steps, "--eval-interval", steps, "--eval-iters", 2,
        "--batch-size", batch, "--warmup-steps", 2, "--precision", "bf16", "--device", device, "--no-progress",
    )  # fmt: skip
    return [
        (
            "archnb train",
            f"{preset}, batch {batch}, {steps} steps, bf16",
            "tokens/s",
            metric(text, "perf/tokens_per_s"),
        ),
        ("archnb train", f"{preset}, batch {batch}, {steps} steps, bf16", "MFU", metric(text, "perf/mfu")),
        ("archnb train", "the whole command (data, build, steps)", "seconds", secs),
    ]


def check_bench(small: bool, device: str, compiled: bool) -> list[tuple]:
    "`archnb bench --vs hf` in bf16 (`--compile` when `compiled`): archnb against the transformers twin."
    preset, batch = ("debug", 4) if small else ("150M", 16)
    step = f"archnb bench --vs hf, {'compiled' if compiled else 'eager'}"
    text, _ = archnb("bench", "--preset", preset, "--vs", "hf", "--precision", "bf16", "--batch", batch,
                     "--rounds", 3, "--device", device, *(["--compile"] if compiled else []))  # fmt: skip
    rows = []
    for line in text.splitlines():
        if m := re.match(r"^(\w+): ([\d.]+)×$", line.strip()):
            rows.append((step, f"{preset}, batch {batch}, bf16", m.group(1), float(m.group(2))))
    rows.append((step, "table", "text", "\n" + text.strip()))
    return rows


def random_smollm2(folder: Path, small: bool) -> Path:
    "A random SmolLM2-135M-shaped Llama (30 layers, 576 wide, 9 heads, 3 kv heads) with archnb's byte tokenizer."
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from archnb.data import bytes_tokenizer, hf_tokenizer

    torch.manual_seed(0)
    tok = hf_tokenizer(bytes_tokenizer())
    layers, width, heads, kv, ff = (2, 64, 4, 2, 128) if small else (30, 576, 9, 3, 1536)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=width, intermediate_size=ff, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=8192, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


GENERATION_ROW = re.compile(r"^\s*(archnb|generate|generate-static|generate_batch)\s+([\d.,]+)\s+±\d+%\s+([\d,]+)"
                            r"\s+([\d.,]+)\s+(\d+)\s+([\d.,]+)×$", re.M)


def check_generation(folder: Path, small: bool, device: str) -> list[tuple]:
    "`archnb bench-generate`: archnb's generator against generate (dynamic, static cache) and generate_batch."
    n, batch, new_tokens = (8, 4, 8) if small else (128, 64, 128)
    text, _ = archnb(
        "bench-generate", "--model", folder, "--questions-from", "generated", "--questions", n, "--protocol", "archnb",
        "--batch-size", batch, "--max-tokens", new_tokens, "--dtype", "bfloat16", "--device", device, "--no-progress",
    )  # fmt: skip
    where = f"random SmolLM2 shape, bf16, {n} prompts, batch {batch}, {new_tokens} new tokens, greedy"
    rows = []
    for runner, _, _, speed, equal, ratio in GENERATION_ROW.findall(text):
        rows.append(("generation", where, f"{runner} tokens/s", float(speed.replace(",", ""))))
        if runner != "archnb":
            rows.append(("generation", where, f"archnb / {runner}", float(ratio)))
            rows.append(("generation", where, f"{runner}: replies equal to archnb's", int(equal)))
    if not rows:
        raise RuntimeError(f"archnb bench-generate printed no table:\n{text[-2000:]}")
    return rows + [("generation", "table", "text", "\n" + text.strip())]


def check_streetmath(folder: Path, out: Path, small: bool, device: str) -> list[tuple]:
    "A short `archnb streetmath` run (archnb protocol) on the random SmolLM2-shaped model."
    n = 8 if small else 128
    text, secs = archnb(
        "streetmath", "--model", folder, "--dataset", "generated", "--limit", n, "--protocol", "archnb",
        "--max-tokens", 64, "--batch-size", 64, "--device", device, "--no-progress", "--output", out / "sm.jsonl",
    )  # fmt: skip
    answered = re.search(r"(\d+) questions: (\d+) answered", text)
    records = [json.loads(line) for line in (out / "sm.jsonl").read_text().splitlines() if '"summary"' not in line]
    tokens = sum(r.get("completion_tokens") or 0 for r in records)
    where = f"random SmolLM2 shape, {n} generated questions, 64 new tokens at most"
    return [
        ("archnb streetmath", where, "questions answered", int(answered.group(2)) if answered else float("nan")),
        ("archnb streetmath", where, "seconds (whole command)", secs),
        ("archnb streetmath", where, "completion tokens", tokens),
    ]


def machine(device: str) -> str:
    "The machine in words: date, GPU, torch and transformers versions."
    import torch
    import transformers

    gpu = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine()
    return (
        f"{datetime.date.today()}; {gpu}; torch {torch.__version__}; transformers {transformers.__version__}; "
        f"python {platform.python_version()}"
    )


def table(rows: list[tuple]) -> str:
    "The rows as a Markdown table (long texts after it)."
    lines, texts = ["| step | setting | figure | value |", "|---|---|---|---:|"], []
    for step, where, what, value in rows:
        if isinstance(value, str):
            texts.append(f"{step} ({where}):{value}")
            continue
        shown = (
            f"{value:.1%}"
            if what == "MFU"
            else f"{value:,}" if isinstance(value, int) else f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        )
        lines.append(f"| {step} | {where} | {what} | {shown} |")
    return "\n".join(lines) + ("\n\n```\n" + "\n\n".join(texts) + "\n```" if texts else "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="folder for the runs and gpu_check.md (default: a new temporary one)")
    p.add_argument("--small", action="store_true", help="tiny sizes, to check the script itself (e.g. on a CPU)")
    p.add_argument("--device", default="cuda", help="cuda (default), or cpu with --small")
    args = p.parse_args()
    if reason := no_gpu_reason(args.device):
        print(f"gpu_check: skipped: {reason}; nothing was run")
        return 0
    sys.path.insert(0, str(REPO))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="archnb-gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    head = f"GPU check: {machine(args.device)}"
    print(head, flush=True)
    folder = random_smollm2(out / "smollm2-random", args.small)
    rows, failed = [], []
    steps = (
        ("train", lambda: check_train(out, args.small, args.device)),
        ("bench", lambda: check_bench(args.small, args.device, compiled=False)),
        ("bench compiled", lambda: check_bench(args.small, args.device, compiled=True)),
        ("generation", lambda: check_generation(folder, args.small, args.device)),
        ("streetmath", lambda: check_streetmath(folder, out, args.small, args.device)),
    )
    for name, step in steps:
        start = time.perf_counter()
        try:
            rows += step()
            print(f"gpu_check: {name} done in {time.perf_counter() - start:.0f} s", flush=True)
        except Exception as e:  # one failing step must not hide the others' figures
            failed.append(f"{name}: {type(e).__name__}: {e}")
            print(f"gpu_check: {name} FAILED: {e}", flush=True)
    report = f"{head}\n\n{table(rows)}\n" + "".join(f"\nFAILED {f}\n" for f in failed)
    (out / "gpu_check.md").write_text(report)
    print("\n" + report + f"\nwritten to {out / 'gpu_check.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
