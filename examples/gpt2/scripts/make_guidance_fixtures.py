#!/usr/bin/env python3
"""Writes `examples/gpt2/tests/data/guidance.json`: classifier-free guidance results of transformers.

The model is the tiny random GPT-2 of `tests/data/tiny-gpt2/` (written by
`make_parity_fixtures.py`), the prompts are the prompt ids recorded in `tests/data/parity.json`.
Every case runs `GPT2LMHeadModel.generate` greedily with `guidance_scale` (transformers then adds
`UnbatchedClassifierFreeGuidanceLogitsProcessor`, first in the processor list) and, for some cases,
`negative_prompt_ids`, and records the generated ids and, for each step, the gap between the two
best guided scores (so that a test can tell a near-tie from a real difference). With no negative
prompt, the unconditional context is the prompt's last token.

Usage (from the repository root):

    /path/to/python examples/gpt2/scripts/make_guidance_fixtures.py

Requires torch and transformers (5.x).
"""

import json
from pathlib import Path

import torch
import transformers
from transformers import GPT2LMHeadModel

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
MAX_NEW = 16


def main():
    torch.set_num_threads(1)
    model = GPT2LMHeadModel.from_pretrained(DATA / "tiny-gpt2").eval()
    parity = json.loads((DATA / "parity.json").read_text())
    prompts = [case["prompt_ids"] for case in parity["tiny_gpt2"]["cases"]]
    negatives = [None, [464, 3797, 3332], [50256]]
    cases = []
    for p, prompt in enumerate(prompts):
        for scale in (0.0, 1.5, 3.0):
            negative = negatives[(p + int(scale)) % len(negatives)]
            kwargs = {}
            if negative is not None:
                kwargs["negative_prompt_ids"] = torch.tensor([negative])
            with torch.no_grad():
                out = model.generate(
                    torch.tensor([prompt]),
                    max_new_tokens=MAX_NEW,
                    do_sample=False,
                    guidance_scale=scale,
                    pad_token_id=50256,
                    eos_token_id=None,
                    output_scores=True,
                    return_dict_in_generate=True,
                    **kwargs,
                )
            gaps = []
            for scores in out.scores:
                top = torch.topk(scores[0], 2).values
                gaps.append(float(top[0] - top[1]))
            cases.append(
                {
                    "prompt_ids": prompt,
                    "guidance_scale": scale,
                    "negative_prompt_ids": negative,
                    "generated_ids": out.sequences[0, len(prompt):].tolist(),
                    "top2_gaps": gaps,
                }
            )
    fixture = {
        "generated_by": "examples/gpt2/scripts/make_guidance_fixtures.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
        "max_new_tokens": MAX_NEW,
        "cases": cases,
    }
    (DATA / "guidance.json").write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
