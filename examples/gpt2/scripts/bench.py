#!/usr/bin/env python3
"""Tokens/s of the `gpt2` example next to transformers/PyTorch, same machine, same run.

Both generate greedily (or with `--num-beams N`, by beam search: transformers'
`generate(num_beams=N)` against the example's `--num-beams N`) with a KV cache, batch 1, on CPU,
from a randomly initialised GPT-2 of the real 124M shape (12 layers, 768 wide, 12 heads, 1024 positions, vocabulary 50257). The weights
(~500 MB of f32) are made by this script on first use and kept in `--model-dir` (default
/tmp/gpt2-124m-random); they are never committed. End-of-text does not stop either side, so both
produce exactly `--new-tokens` tokens. Both sides are timed from the prompt's ids to the last
generated id (prefill included, tokenization and loading excluded), on one thread by default.
`--prompt-tokens N` replaces the prompt by N tokens (" the" N times) to time a long prefill
(with `--new-tokens 1`: the time to the first token). `--dtype f16|bf16` keeps the Rust side's
weights in 16 bits (rounded from the f32 file at load); PyTorch stays in f32. `--kernels` forces
the Rust side's kernel path (portable, avx2, avx512), to see what another CPU would run.

The report names the CPU, its vector extensions, the Rust kernel path, PyTorch's CPU capability
and the load average, since every figure depends on them.

Usage (from the repository root; builds the example in release mode first):

    cargo build --release -p gpt2
    /path/to/python examples/gpt2/scripts/bench.py [--threads 1] [--new-tokens 128] [--runs 3]
    /path/to/python examples/gpt2/scripts/bench.py --prompt-tokens 256 --new-tokens 1 --runs 5

Requires torch, transformers (5.x) and safetensors.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parents[3]
PROMPT = "My favourite movie is"
PROMPT_IDS = [3666, 12507, 3807, 318]


def ensure_model(directory: Path) -> None:
    if (directory / "model.safetensors").exists() and (directory / "config.json").exists():
        return
    print(f"writing a random 124M GPT-2 to {directory} ...", file=sys.stderr)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    model.save_pretrained(directory, safe_serialization=True)


def cpu_description() -> str:
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    wanted = ["sse4_2", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "amx_tile", "asimd"]
    return f"{model}, {os.cpu_count()} logical CPUs, " + (
        " ".join(f for f in wanted if f in flags) or "no vector extensions listed")


@torch.no_grad()
def torch_tokens_per_second(directory: Path, new_tokens: int, runs: int,
                            num_beams: int = 1, prompt_ids=PROMPT_IDS) -> list[float]:
    model = GPT2LMHeadModel.from_pretrained(directory, dtype=torch.float32).eval()
    ids = torch.tensor([prompt_ids])
    mask = torch.ones_like(ids)
    kwargs = dict(attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                  do_sample=False, use_cache=True, pad_token_id=50256, eos_token_id=None,
                  num_beams=num_beams)
    model.generate(ids, **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
    speeds = []
    for _ in range(runs):
        start = time.perf_counter()
        out = model.generate(ids, **kwargs)
        elapsed = time.perf_counter() - start
        assert out.shape[1] == len(prompt_ids) + new_tokens
        speeds.append(new_tokens / elapsed)
    return speeds, out[0, len(prompt_ids):].tolist()


def rust_tokens_per_second(binary: Path, directory: Path, new_tokens: int, runs: int,
                           threads: int, num_beams: int = 1, prompt: str = PROMPT,
                           extra: list[str] = ()):
    cmd = [str(binary), "--model", str(directory), "--prompt", prompt, "--greedy",
           "--max-new-tokens", str(new_tokens), "--ignore-eos", "--threads", str(threads), "--json",
           *extra]
    if num_beams > 1:
        cmd += ["--num-beams", str(num_beams)]
    speeds = []
    for _ in range(runs):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        result = json.loads(out)
        best = result["beams"][0] if num_beams > 1 else result
        assert len(best["generated_ids"]) == new_tokens
        speeds.append(best["tokens_per_second"])
    return speeds, best["generated_ids"], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/gpt2-124m-random"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--num-beams", type=int, default=1)
    parser.add_argument("--prompt-tokens", type=int, default=None,
                        help='a prompt of this many tokens (" the" repeated) instead of the default')
    parser.add_argument("--dtype", choices=["f32", "f16", "bf16"], default=None,
                        help="the Rust side's weights in memory (default: the file's, f32)")
    parser.add_argument("--kernels", choices=["portable", "avx2", "avx512"], default=None,
                        help="force the Rust side's kernel path (default: the widest available)")
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "gpt2")
    args = parser.parse_args()
    if not args.binary.exists():
        sys.exit(f"{args.binary} is missing: run `cargo build --release -p gpt2` first")

    torch.set_num_threads(args.threads)
    ensure_model(args.model_dir)
    prompt = PROMPT if args.prompt_tokens is None else " the" * args.prompt_tokens
    extra = []
    if args.dtype:
        extra += ["--dtype", args.dtype]
    if args.kernels:
        extra += ["--kernels", args.kernels]
    load_before = os.getloadavg()[0]
    # Alternate the two sides so that a noisy neighbour hurts both alike.
    torch_speeds, rust_speeds = [], []
    for _ in range(args.runs):
        speeds, rust_ids, info = rust_tokens_per_second(args.binary, args.model_dir,
                                                        args.new_tokens, 1, args.threads,
                                                        args.num_beams, prompt, extra)
        rust_speeds += speeds
        prompt_ids = info["prompt_ids"]
        if args.prompt_tokens is None:
            assert prompt_ids == PROMPT_IDS, prompt_ids
        else:
            assert len(prompt_ids) == args.prompt_tokens, len(prompt_ids)
        speeds, torch_ids = torch_tokens_per_second(args.model_dir, args.new_tokens, 1,
                                                    args.num_beams, prompt_ids)
        torch_speeds += speeds
    load_after = os.getloadavg()[0]
    rust, pt = statistics.median(rust_speeds), statistics.median(torch_speeds)
    same = next((i for i, (a, b) in enumerate(zip(rust_ids, torch_ids)) if a != b), None)
    how = "greedy" if args.num_beams == 1 else f"beam search ({args.num_beams} beams)"
    print(f"CPU: {cpu_description()}")
    print(f"load average (1 min): {load_before:.1f} before, {load_after:.1f} after")
    print(f"GPT-2 124M shape, random weights, {how}, batch 1, KV cache, "
          f"{len(prompt_ids)}-token prompt, {args.new_tokens} new tokens, {args.threads} "
          f"thread(s), median of {args.runs} runs, sides alternating")
    rust_how = f"{info['kernels']} kernels, {info['weights_dtype']} weights"
    print(f"  gpt2 example (Rust), {rust_how}: {rust:7.2f} tokens/s ({args.new_tokens / rust:.3f} s)"
          f"   runs {[round(s, 2) for s in rust_speeds]}")
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"  transformers {transformers.__version__} + PyTorch {torch.__version__.split('+')[0]} "
          f"({capability}, f32): {pt:7.2f} tokens/s ({args.new_tokens / pt:.3f} s)   "
          f"runs {[round(s, 2) for s in torch_speeds]}")
    print(f"  ratio Rust / PyTorch: {rust / pt:.2f}")
    print(f"  {'greedy' if args.num_beams == 1 else 'best hypothesis'} ids: "
          + ("identical" if same is None else f"first differ at step {same}"))


if __name__ == "__main__":
    main()
