#!/usr/bin/env python3
"""Writes `examples/gpt2/tests/data/beam_search.json`: beam-search results of transformers.

The model is the tiny random GPT-2 of `tests/data/tiny-gpt2/` (written by
`make_parity_fixtures.py`), the prompts are the prompt ids recorded in `tests/data/parity.json`.
Every case runs `GPT2LMHeadModel.generate` with `num_beams`, `do_sample=False` and the case's
settings (`max_new_tokens`, `length_penalty`, `early_stopping`, `num_return_sequences`, EOS ids,
`min_new_tokens`, `repetition_penalty`, `no_repeat_ngram_size`) and records, for each returned
hypothesis, its generated ids (the prompt removed, cut after the first EOS id: transformers pads
shorter hypotheses with the first EOS id) and its score (`sequences_scores`: the sum of the
processed log-probabilities divided by `length ** length_penalty`).

A random model rarely emits GPT-2's real EOS id, so most cases take as EOS ids tokens that the
plain beam search of the same prompt generates: then hypotheses do finish early, and the
finished-hypothesis bookkeeping, the length penalty and the early-stopping rules are exercised.

With several EOS ids taken from the early tokens of different beams, many hypotheses finish
before the length limit, so that `early_stopping` (`False`, `True`, `"never"`) changes the result.

Usage (from the repository root):

    /path/to/python examples/gpt2/scripts/make_beam_fixtures.py

Requires torch and transformers (5.x).
"""

import json
from pathlib import Path

import torch
import transformers
from transformers import GPT2LMHeadModel

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
MAX_NEW = 20
REAL_EOS = 50256


def run(model, prompt, num_beams=4, max_new_tokens=MAX_NEW, length_penalty=1.0, early_stopping=False,
        num_return_sequences=None, eos=(REAL_EOS,), min_new_tokens=0, repetition_penalty=None,
        no_repeat_ngram_size=None):
    if num_return_sequences is None:
        num_return_sequences = num_beams
    ids = torch.tensor([prompt])
    kwargs = {}
    if repetition_penalty is not None:
        kwargs["repetition_penalty"] = repetition_penalty
    if no_repeat_ngram_size is not None:
        kwargs["no_repeat_ngram_size"] = no_repeat_ngram_size
    if min_new_tokens:
        kwargs["min_new_tokens"] = min_new_tokens
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
            num_return_sequences=num_return_sequences,
            eos_token_id=list(eos),
            pad_token_id=eos[0],
            return_dict_in_generate=True,
            output_scores=True,
            **kwargs,
        )
    hypotheses = []
    for seq, score in zip(out.sequences.tolist(), out.sequences_scores.tolist()):
        gen = seq[len(prompt):]
        for i, t in enumerate(gen):
            if t in eos:
                gen = gen[: i + 1]
                break
        hypotheses.append({"tokens": gen, "score": score})
    case = {
        "prompt_ids": prompt,
        "num_beams": num_beams,
        "max_new_tokens": max_new_tokens,
        "length_penalty": length_penalty,
        "early_stopping": early_stopping,
        "num_return_sequences": num_return_sequences,
        "eos": list(eos),
        "min_new_tokens": min_new_tokens,
        "repetition_penalty": repetition_penalty,
        "no_repeat_ngram_size": no_repeat_ngram_size,
        "hypotheses": hypotheses,
    }
    return case


def main():
    torch.manual_seed(0)
    model = GPT2LMHeadModel.from_pretrained(DATA / "tiny-gpt2", dtype=torch.float32).eval()
    parity = json.loads((DATA / "parity.json").read_text())
    prompts = [c["prompt_ids"] for c in parity["tiny_gpt2"]["cases"][:3]]

    cases = []
    for prompt in prompts:
        base = run(model, prompt)
        cases.append(base)
        best = base["hypotheses"][0]["tokens"]
        other = base["hypotheses"][1]["tokens"]
        # EOS ids that the search meets: a token of the best beam at step 4 and one of the
        # second beam at step 9.
        eos_a = best[4]
        eos_b = other[9] if other[9] != eos_a else other[10]
        for early in (False, True, "never"):
            for lp in (1.0, 0.0, 2.0, -0.5):
                cases.append(run(model, prompt, eos=(eos_a,), early_stopping=early, length_penalty=lp))
        cases.append(run(model, prompt, eos=(eos_a, eos_b)))
        many = []
        for h in base["hypotheses"]:
            for t in h["tokens"][1:4]:
                if t not in many:
                    many.append(t)
        many = tuple(many[:4])
        for early in (False, True, "never"):
            for lp in (1.0, 0.0, 2.0):
                cases.append(run(model, prompt, eos=many, early_stopping=early, length_penalty=lp))
        cases.append(run(model, prompt, eos=(eos_b, eos_a), early_stopping=True, num_return_sequences=2))
        cases.append(run(model, prompt, eos=(eos_a,), min_new_tokens=8))
        cases.append(run(model, prompt, eos=(eos_a,), repetition_penalty=1.3))
        cases.append(run(model, prompt, eos=(eos_a,), no_repeat_ngram_size=2))
        for beams in (2, 3, 6):
            cases.append(run(model, prompt, num_beams=beams, eos=(eos_a,), num_return_sequences=1))

    out = {
        "generated_by": "examples/gpt2/scripts/make_beam_fixtures.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "model": "tests/data/tiny-gpt2",
        "cases": cases,
    }
    path = DATA / "beam_search.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    finished = sum(1 for c in cases for h in c["hypotheses"] if h["tokens"] and h["tokens"][-1] in c["eos"])
    print(f"wrote {path}: {len(cases)} cases, {finished} hypotheses end with an EOS id")


if __name__ == "__main__":
    main()
