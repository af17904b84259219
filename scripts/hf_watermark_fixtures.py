#!/usr/bin/env python3
"""Generates the watermark parity fixture tests/data/hf_watermark/watermark.json.

How to run (from the repository root):

    python scripts/hf_watermark_fixtures.py            # writes the fixture
    python scripts/hf_watermark_fixtures.py --check    # regenerates in memory, compares

Requirements: Python >= 3.10 with torch (CPU build; 2.15 used) and transformers (5.25 used).
Nothing is downloaded: only transformers' `WatermarkLogitsProcessor` and `WatermarkDetector`
classes run, on token ids and score rows made up here. CI never runs this script; the Rust
test `tests/watermark.rs` reads its output.

Processor cases: for each configuration (vocabulary size, greenlist_ratio, bias, hashing_key,
seeding_scheme, context_width) and each history, the processor runs on the row

    row[i] = float32(((i * 7919) % V) / V)        (distinct scores: no sort ties)

and the fixture stores the ids whose score changed (the green ids the bias reached), sorted,
and the bias as the row holds it after the addition for the first of them.

Detector cases: token sequences (random ones, and ones generated greedily from the row above
with the watermark, so that both verdicts occur) scored by `WatermarkDetector` with and without
`ignore_repeated_ngrams`: tokens scored, green tokens, z-score and p-value.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import types

import numpy as np
import torch
from transformers.generation.logits_process import WatermarkLogitsProcessor
from transformers.generation.watermarking import WatermarkDetector

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "hf_watermark", "watermark.json")

CONFIGS = [
    # (vocab, greenlist_ratio, bias, hashing_key, seeding_scheme, context_width)
    (50257, 0.25, 2.0, 15485863, "lefthash", 1),
    (50257, 0.5, 1.5, 15485863, "selfhash", 1),
    (50257, 0.25, 2.5, 15485863, "selfhash", 2),
    (1000, 0.25, 2.0, 15485863, "lefthash", 3),
    (1000, 0.1, 4.0, 12345, "lefthash", 1),
    (1000, 0.5, 2.0, 987654321987, "selfhash", 3),
    (997, 0.75, 0.5, 7, "selfhash", 1),
    (64, 0.3, 1.0, 2**40 + 17, "lefthash", 2),
    (64, 0.4, 1.0, 4242, "selfhash", 2),
]


def row(vocab: int) -> torch.Tensor:
    values = [((i * 7919) % vocab) / vocab for i in range(vocab)]
    return torch.tensor(np.array(values, dtype=np.float32))


def watermarking_config(config) -> dict:
    vocab, ratio, bias, key, scheme, width = config
    return {
        "greenlist_ratio": ratio,
        "bias": bias,
        "hashing_key": key,
        "seeding_scheme": scheme,
        "context_width": width,
    }


def processor_cases(config, rng: random.Random) -> list[dict]:
    vocab = config[0]
    processor = WatermarkLogitsProcessor(vocab_size=vocab, device="cpu", **watermarking_config(config))
    base = row(vocab)
    out = []
    lengths = [1, 2, 3, 5, 8] if vocab > 100 else [1, 2, 3, 4, 6]
    for length in lengths:
        history = [rng.randrange(vocab) for _ in range(length)]
        if length >= 3 and vocab > 100:
            # Large ids exercise the table's modulo and the seed's 64-bit range.
            history[-1] = vocab - 1 - rng.randrange(5)
        input_ids = torch.tensor([history])
        processed = processor(input_ids, base.clone().unsqueeze(0))[0]
        changed = (processed != base).nonzero().flatten().tolist()
        out.append({"history": history, "green": sorted(changed)})
    return out


def watermarked(config, prompt: list[int], n: int) -> list[int]:
    """Greedy continuation of `prompt` on a row that depends on the last token, watermarked."""
    vocab = config[0]
    processor = WatermarkLogitsProcessor(vocab_size=vocab, device="cpu", **watermarking_config(config))
    ids = list(prompt)
    for _ in range(n):
        last = ids[-1]
        scores = torch.tensor(
            np.array([(((i + 31 * last) * 7919) % vocab) / vocab for i in range(vocab)], dtype=np.float32)
        )
        # Flat enough that the bias decides: scale the row down.
        scores = scores * 0.5
        processed = processor(torch.tensor([ids]), scores.unsqueeze(0))[0]
        ids.append(int(processed.argmax()))
    return ids[len(prompt):]


def detector_cases(config, rng: random.Random) -> list[dict]:
    vocab = config[0]
    model_config = types.SimpleNamespace(bos_token_id=vocab - 1, vocab_size=vocab, is_encoder_decoder=False)
    out = []
    sequences = [[rng.randrange(vocab) for _ in range(rng.randrange(config[5] + 1, 40))] for _ in range(3)]
    sequences.append(watermarked(config, [rng.randrange(vocab) for _ in range(config[5])], 30))
    # Repeats, for ignore_repeated_ngrams.
    sequences.append(sequences[-1][:10] * 3)
    # A leading BOS, dropped by the detector.
    sequences.append([vocab - 1] + sequences[0])
    for tokens in sequences:
        for ignore in (False, True):
            detector = WatermarkDetector(
                model_config=model_config,
                device="cpu",
                watermarking_config=watermarking_config(config),
                ignore_repeated_ngrams=ignore,
            )
            result = detector(torch.tensor([tokens]), return_dict=True)
            out.append(
                {
                    "tokens": tokens,
                    "ignore_repeated_ngrams": ignore,
                    "tokens_scored": int(result.num_tokens_scored[0]),
                    "green_tokens": int(result.num_green_tokens[0]),
                    "z_score": float(result.z_score[0]),
                    "p_value": float(result.p_value[0]),
                }
            )
    return out


def build() -> dict:
    rng = random.Random(20231)
    cases = []
    for config in CONFIGS:
        vocab, ratio, bias, key, scheme, width = config
        cases.append(
            {
                "vocab_size": vocab,
                "greenlist_ratio": ratio,
                "bias": bias,
                "hashing_key": key,
                "seeding_scheme": scheme,
                "context_width": width,
                "bos_token_id": vocab - 1,
                "processor": processor_cases(config, rng),
                "detector": detector_cases(config, rng),
            }
        )
    import transformers

    return {
        "generator": "scripts/hf_watermark_fixtures.py",
        "torch": torch.__version__.split("+")[0],
        "transformers": transformers.__version__,
        "row": "row[i] = float32(((i * 7919) % V) / V)",
        "cases": cases,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = json.dumps(build(), separators=(",", ":")) + "\n"
    if args.check:
        with open(OUT) as f:
            same = f.read() == text
        print("up to date" if same else "differs")
        return 0 if same else 1
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
