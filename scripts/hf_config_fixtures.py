#!/usr/bin/env python3
"""Generates tests/data/hf_config/cases.json: what transformers' own `generate()` builds from a
`generation_config.json`, and what that processor list does to made-up rows.

How to run (from the repository root):

    python scripts/hf_config_fixtures.py            # writes tests/data/hf_config/cases.json
    python scripts/hf_config_fixtures.py --check    # regenerates in memory, compares with the file

Requirements: as scripts/hf_fixtures.py (torch CPU, transformers 5.24 used, numpy), whose row
generator and output encoding this script reuses. Nothing is downloaded.

For every configuration below:

1. The configuration is written to a `generation_config.json` in a temporary directory and
   loaded with `GenerationConfig.from_pretrained`, as a model's file is loaded. It becomes the
   `generation_config` of a tiny randomly initialized GPT-2 (1 layer, 8 dimensions, V = 1000,
   no special tokens of its own).
2. `model.generate(prompt)` is called. Its own code merges the file with transformers' hidden
   defaults, prepares the lengths and calls `_get_logits_processor`; the processor list it
   returns is captured and generation is stopped right there (no forward pass runs). So the
   list is exactly what `generate()` would apply, built by transformers itself.
3. The list is applied to a few rows built by the portable generator of
   tests/data/hf_parity/README.md, each with a history made of the prompt plus a few
   generated tokens (the processors were built for that prompt length, as in `generate`).
   As in scripts/hf_fixtures.py the list also runs with the deterministic tie rule for
   `torch.sort`/`torch.topk` (`boundary_tie` when it matters), and again in float64 and with
   4 threads: ids whose fate changes there are listed as ambiguous (`fp_sensitive`).

The output is deterministic (torch pinned to one thread; the model's weights are never used).
CI never runs this script; tests/config.rs only reads its output. The format is described in
tests/data/hf_config/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import types
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_fixtures as H  # noqa: E402  (row generator, tie rule, output encoding)

import transformers  # noqa: E402
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.generation import logits_process as LP  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "hf_config", "cases.json")
FORMAT_VERSION = 1
VOCAB = 1000
PROMPT_LEN = 8
# Generated tokens appended to the prompt for each row, and the row shapes.
STEPS = ((0, "normal"), (3, "normal"), (7, "peaked"))

# (name, generation_config.json contents, token forced at the end of the history when
# something was generated: makes a two-token bad word's prefix match).
CONFIGS = [
    ("gpt2_like_greedy", {"bos_token_id": 1, "eos_token_id": 2}, None),
    ("sample_hidden_top_k", {"do_sample": True, "eos_token_id": 2}, None),
    ("sample_temperature_hidden_top_k", {"do_sample": True, "temperature": 0.7}, None),
    (
        "greedy_ignores_warpers",
        {"do_sample": False, "temperature": 0.6, "top_p": 0.9, "top_k": 5, "repetition_penalty": 1.3, "eos_token_id": 2},
        None,
    ),
    (
        "llama3_like",
        {
            "bos_token_id": 1,
            "eos_token_id": [2, 9],
            "do_sample": True,
            "temperature": 0.6,
            "top_p": 0.9,
            "max_length": 4096,
            "transformers_version": "4.40.0.dev0",
        },
        None,
    ),
    (
        "qwen_like",
        {
            "bos_token_id": 3,
            "pad_token_id": 3,
            "do_sample": True,
            "eos_token_id": [5, 3],
            "repetition_penalty": 1.05,
            "temperature": 0.7,
            "top_p": 0.8,
            "top_k": 20,
            "transformers_version": "4.37.0",
        },
        None,
    ),
    ("renormalize", {"do_sample": True, "top_k": 0, "top_p": 0.95, "temperature": 1.3, "renormalize_logits": True}, None),
    (
        "penalties_and_bans",
        {
            "do_sample": True,
            "top_k": 0,
            "repetition_penalty": 1.2,
            "no_repeat_ngram_size": 3,
            "bad_words_ids": [[7], [11, 12], [2]],
            "min_new_tokens": 5,
            "eos_token_id": 2,
        },
        11,
    ),
    ("min_p_typical", {"do_sample": True, "temperature": 1.5, "top_k": 0, "min_p": 0.05, "typical_p": 0.9}, None),
    ("epsilon_eta", {"do_sample": True, "top_k": 100, "epsilon_cutoff": 0.0003, "eta_cutoff": 0.0009}, None),
    (
        "suppress_and_bias_greedy",
        {
            "suppress_tokens": [0, 1, 17],
            "begin_suppress_tokens": [2, 220],
            "sequence_bias": [[[4], 2.5], [[8, 9], -3.0]],
            "eos_token_id": 2,
        },
        8,
    ),
    ("top_h", {"do_sample": True, "top_h": 0.6, "top_k": 0, "temperature": 0.9}, None),
    ("min_length_total", {"min_length": 12, "eos_token_id": [2, 4], "renormalize_logits": True}, None),
    ("min_new_tokens_without_eos", {"min_new_tokens": 3, "do_sample": True, "top_k": 10}, None),
    ("neutral_sampling", {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.0, "typical_p": 1.0}, None),
    (
        "everything",
        {
            "do_sample": True,
            "temperature": 0.8,
            "top_k": 40,
            "top_p": 0.9,
            "min_p": 0.02,
            "repetition_penalty": 1.1,
            "no_repeat_ngram_size": 4,
            "suppress_tokens": [13],
            "eos_token_id": 2,
            "renormalize_logits": True,
            "max_new_tokens": 32,
            "use_cache": True,
            "transformers_version": "4.45.0",
        },
        None,
    ),
]


class Captured(Exception):
    def __init__(self, processors, config):
        super().__init__("captured")
        self.processors = processors
        self.config = config


def tiny_model():
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=VOCAB, n_positions=8192, n_embd=8, n_layer=1, n_head=1, bos_token_id=None, eos_token_id=None
    )
    return GPT2LMHeadModel(cfg).eval()


def capture(model, config: dict, prompt: list[int]):
    """The processor list and the resolved generation config of `model.generate(prompt)`."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump(config, f)
        model.generation_config = GenerationConfig.from_pretrained(d)
    original = type(model)._get_logits_processor

    def stop_after_building(self, generation_config, *args, **kwargs):
        raise Captured(original(self, generation_config, *args, **kwargs), generation_config)

    model._get_logits_processor = types.MethodType(stop_after_building, model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
    except Captured as c:
        return c.processors, c.config
    finally:
        del model._get_logits_processor
    raise RuntimeError("generate() returned without building its processors")


def scalar_params(proc) -> dict:
    """The scalar attributes of a processor (its parameters), JSON-friendly."""
    out = {}
    for k, v in sorted(vars(proc).items()):
        if isinstance(v, bool) or k == "filter_value":
            continue
        if isinstance(v, (int, float)):
            out[k] = v
        elif isinstance(v, torch.Tensor) and v.numel() == 1 and v.dtype.is_floating_point:
            out[k] = float(v)
    return out


def run_list(processors, row, history, tie_rule=False, dtype=np.float32, threads=1):
    saved = LP.torch
    if tie_rule:
        LP.torch = H.TieRuleTorch()
    torch.set_num_threads(threads)
    try:
        input_ids = torch.tensor([history], dtype=torch.long)
        scores = torch.from_numpy(row.astype(dtype)).unsqueeze(0)
        ops = []
        for proc in processors:
            before = scores.clone()
            scores = proc(input_ids, scores.clone())
            if isinstance(proc, LP.TemperatureLogitsWarper):
                ops.append(["div", H.f32_hex(np.float32(proc.temperature))])
            elif isinstance(proc, LP.LogitNormalization) and dtype == np.float32:
                b = before[0].numpy()
                am = int(np.argmax(b))
                ops.append(["sub", H.f32_hex(b[am])])
                ops.append(["sub", H.f32_hex(-scores[0].numpy()[am])])
        return scores[0].numpy().copy(), ops
    finally:
        LP.torch = saved
        torch.set_num_threads(1)


def history_for(rng: random.Random, generated: int, force_last):
    """A prompt whose tail repeats an earlier segment (n-gram bans apply), then `generated`
    tokens; the last one is `force_last` when given."""
    body = [rng.randrange(VOCAB) for _ in range(PROMPT_LEN - 3)]
    prompt = body + body[1:4]
    tail = [rng.randrange(VOCAB) for _ in range(generated)]
    if tail and force_last is not None:
        tail[-1] = force_last
    return prompt + tail


def make_case(model, name, config, force_last):
    rng = random.Random(H.case_seed(f"hf_config/{name}"))
    prompt = history_for(rng, 0, None)
    processors, resolved = capture(model, config, prompt)
    eos = resolved.eos_token_id
    case = {
        "name": name,
        "config": config,
        "hf": {
            "processors": [{"class": type(p).__name__, "params": scalar_params(p)} for p in processors],
            "do_sample": bool(resolved.do_sample),
            "max_length": int(resolved.max_length),
            "eos_token_id": eos if eos is None or isinstance(eos, list) else [eos],
        },
        "prompt_len": PROMPT_LEN,
        "rows": [],
    }
    for generated, shape in STEPS:
        tokens = prompt + history_for(rng, generated, force_last)[PROMPT_LEN:]
        seed = H.case_seed(f"hf_config/{name}/{generated}/{shape}")
        row = H.make_row(seed, shape, VOCAB)
        real, _ = run_list(processors, row, tokens)
        rule, ops = run_list(processors, row, tokens, tie_rule=True)
        entry = {
            "history": tokens,
            "input": {"vocab": VOCAB, "shape": shape, "seed": seed, "fnv1a": H.fnv1a_bits(row)},
            "expected": H.encode_expected(row, rule, ops),
        }
        if not H.same_bits(real, rule):
            entry["boundary_tie"] = {
                "reason": "transformers' unstable sort orders tied scores at a truncation boundary; "
                "the expected row is transformers run with the tie rule (score descending, higher id first)",
                "ids_differing": int((np.isfinite(real) != np.isfinite(rule)).sum()),
            }
        fin = np.isfinite(rule)
        ambiguous = np.zeros(VOCAB, dtype=bool)
        reasons = []
        for key, kwargs in (("f64", {"dtype": np.float64}), ("4 threads", {"threads": 4})):
            out, _ = run_list(processors, row, tokens, tie_rule=True, **kwargs)
            flips = np.isfinite(out) != fin
            if flips.any():
                reasons.append(f"{key}: {int(flips.sum())}")
                ambiguous |= flips
        if ambiguous.any():
            entry["fp_sensitive"] = {
                "reason": "the same transformers code decides these ids differently in " + ", ".join(reasons),
                **H.encode_ids(np.nonzero(ambiguous)[0], VOCAB, "ambiguous"),
            }
        case["rows"].append(entry)
    return case


def render(cases) -> str:
    head = {
        "format": FORMAT_VERSION,
        "generated_by": "scripts/hf_config_fixtures.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
    }
    lines = [json.dumps(head)[:-1] + ', "cases": [']
    for i, case in enumerate(cases):
        lines.append(json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else ""))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the stored file instead of writing")
    args = ap.parse_args()
    model = tiny_model()
    cases = [make_case(model, name, config, force_last) for name, config, force_last in CONFIGS]
    text = render(cases)
    for c in cases:
        classes = " -> ".join(p["class"] for p in c["hf"]["processors"]) or "(none)"
        marks = sum(("boundary_tie" in r) + ("fp_sensitive" in r) for r in c["rows"])
        print(f"{c['name']}: {classes}" + (f"  [{marks} marked rows]" if marks else ""))
    if args.check:
        with open(OUT) as f:
            if f.read() != text:
                print(f"differs: {OUT}", file=sys.stderr)
                sys.exit(1)
        print("up to date")
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
