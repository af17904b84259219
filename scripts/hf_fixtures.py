#!/usr/bin/env python3
"""Generates the Hugging Face transformers parity fixtures in tests/data/hf_parity/.

How to run (from the repository root):

    python scripts/hf_fixtures.py            # writes tests/data/hf_parity/*.json
    python scripts/hf_fixtures.py --check    # regenerates in memory, compares with the files

Requirements: Python >= 3.10 with torch (CPU build; 2.15 used) and transformers (5.24 used)
and numpy. Nothing is downloaded: only the processor classes of
`transformers.generation.logits_process` are run, on rows made up here.

The output is deterministic: the same versions produce byte-identical files (torch is
pinned to one thread so that reductions always sum in the same order). CI never runs this
script; the Rust test `tests/hf_parity.rs` only reads its output.

What it does, for every case:

1. Builds the input row from (seed, shape, V) with the portable generator described in
   tests/data/hf_parity/README.md (SplitMix64, Irwin-Hall normals, fixed shape transforms).
   The Rust test rebuilds the same row bit for bit, so no row is stored, only its FNV-1a
   checksum.
2. Runs the real transformers processor classes on it in fp32, one stage after the other,
   with the case's history as `input_ids`. A stage that `generate()` would not add at all
   (top_p = 1.0) is left out of the expectation and the case says so (`generate_skips`).
3. Runs them again with `torch.sort` / `torch.topk` replaced by a deterministic tie rule
   (score descending, higher token id first among equal scores). If the two results
   differ, the case depends on how transformers' unstable sort orders exact ties at a
   truncation boundary: it is marked `boundary_tie` and the expected output is the
   tie-rule result (the crate documents that rule); otherwise the expected output is
   transformers' own result, and both are the same.
4. Probes rounding sensitivity with the same transformers code run in float64, with 4
   threads (another reduction order), with every truncation threshold moved by 1e-6
   (relative), and, for typical, with its entropy moved by 1 to 4 f32 ulps. Tokens whose
   fate changes in any of these runs are listed as ambiguous (`fp_sensitive`): fp32
   rounding, not the algorithm, decides them, and the test lets them go either way.
5. Stores the expected output compactly (mask + value exceptions); see the README.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import math
import os
import random
import sys

import numpy as np
import torch
from transformers.generation import logits_process as LP

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "data", "hf_parity")
FORMAT_VERSION = 1

VOCABS = (16, 1000, 50257)
SHAPES = ("normal", "peaked", "flat", "nearflat", "ties", "half_inf", "wide")

# ---------------------------------------------------------------------------------------
# The portable row generator (mirrored exactly in tests/hf_parity.rs).
# ---------------------------------------------------------------------------------------

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
TIE_LEVELS = (-2.0, -0.5, 0.0, 1.0, 2.5)
SPIKES = (12.0, 9.5, 7.0, 4.5)


class SplitMix64:
    """SplitMix64; draw k (0-based) mixes the state seed + (k + 1) * GAMMA (mod 2^64)."""

    def __init__(self, seed: int):
        self.seed = seed & M64
        self.count = 0

    def next_block(self, n: int) -> np.ndarray:
        k = np.arange(self.count + 1, self.count + n + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            z = np.uint64(self.seed) + k * np.uint64(GAMMA)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
            z = z ^ (z >> np.uint64(31))
        self.count += n
        return z


def units(z: np.ndarray) -> np.ndarray:
    """Uniform [0, 1): the top 53 bits times 2^-53 (exact in f64)."""
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def normals(u: np.ndarray) -> np.ndarray:
    """Irwin-Hall: the 12 uniforms of a row of `u` (shape (n, 12)) added left to right, minus 6."""
    acc = u[:, 0].copy()
    for j in range(1, 12):
        acc = acc + u[:, j]
    return acc - 6.0


def make_row(seed: int, shape: str, vocab: int) -> np.ndarray:
    rng = SplitMix64(seed)
    if shape in ("normal", "wide", "peaked", "nearflat"):
        n = normals(units(rng.next_block(12 * vocab)).reshape(vocab, 12))
        if shape == "normal":
            return (3.0 * n).astype(np.float32)
        if shape == "wide":
            return (30.0 * n).astype(np.float32)
        if shape == "nearflat":
            return (1.0 + 0.001 * n).astype(np.float32)
        row = n.astype(np.float32)
        for s, height in enumerate(SPIKES):
            idx = int(rng.next_block(1)[0]) % vocab
            row[idx] = np.float32(height)
        return row
    if shape == "flat":
        return np.full(vocab, 1.5, dtype=np.float32)
    if shape == "ties":
        z = rng.next_block(vocab)
        levels = np.array(TIE_LEVELS, dtype=np.float32)
        return levels[(z % np.uint64(len(TIE_LEVELS))).astype(np.int64)]
    if shape == "half_inf":
        z = rng.next_block(13 * vocab).reshape(vocab, 13)
        n = normals(units(z[:, :12]))
        row = (3.0 * n).astype(np.float32)
        row[(z[:, 12] >> np.uint64(63)) == np.uint64(1)] = -np.inf
        if not np.isfinite(row).any():
            row[0] = 0.0
        return row
    raise ValueError(shape)


def fnv1a_bits(row: np.ndarray) -> str:
    """FNV-1a 64 over the u32 bit patterns of the row (one xor-multiply per entry)."""
    h = 0xCBF29CE484222325
    for b in row.view(np.uint32).tolist():
        h = ((h ^ b) * 0x100000001B3) & M64
    return f"{h:016x}"


def case_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


# ---------------------------------------------------------------------------------------
# transformers processors, and the deterministic tie rule.
# ---------------------------------------------------------------------------------------

TopkResult = collections.namedtuple("TopkResult", ["values", "indices"])


class TieRuleTorch:
    """Stands in for `torch` inside logits_process: sort and topk order exact ties by the
    crate's rule (score descending, higher id first); everything else is torch itself."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def sort(input, dim=-1, descending=False, stable=False):
        assert dim == -1 and not descending, "only ascending last-dim sorts are emulated"
        # Ascending with the lower id first among ties, i.e. read backwards: descending
        # with the higher id first.
        return torch.sort(input, dim=-1, descending=False, stable=True)

    @staticmethod
    def topk(input, k, dim=-1, largest=True, sorted=True):
        assert dim == -1 and largest
        asc = torch.sort(input, dim=-1, descending=False, stable=True)
        return TopkResult(asc.values.flip(-1)[..., :k], asc.indices.flip(-1)[..., :k])


def build_hf(stage: dict, prompt_len: int):
    op = stage["op"]
    if op == "temperature":
        return LP.TemperatureLogitsWarper(float(stage["temperature"]))
    if op == "top_k":
        return LP.TopKLogitsWarper(stage["top_k"], min_tokens_to_keep=stage["min_tokens_to_keep"])
    if op == "top_p":
        return LP.TopPLogitsWarper(stage["top_p"], min_tokens_to_keep=stage["min_tokens_to_keep"])
    if op == "min_p":
        return LP.MinPLogitsWarper(stage["min_p"], min_tokens_to_keep=stage["min_tokens_to_keep"])
    if op == "typical":
        return LP.TypicalLogitsWarper(stage["mass"], min_tokens_to_keep=stage["min_tokens_to_keep"])
    if op == "epsilon":
        return LP.EpsilonLogitsWarper(stage["epsilon"], min_tokens_to_keep=stage["min_tokens_to_keep"])
    if op == "eta":
        return LP.EtaLogitsWarper(stage["epsilon"], min_tokens_to_keep=stage["min_tokens_to_keep"])
    if op == "top_h":
        return LP.TopHLogitsWarper(stage["top_h"])
    if op == "log_softmax":
        return LP.LogitNormalization()
    if op == "repetition_penalty":
        return LP.RepetitionPenaltyLogitsProcessor(float(stage["penalty"]))
    if op == "no_repeat_ngram":
        return LP.NoRepeatNGramLogitsProcessor(stage["ngram_size"])
    if op == "bad_words":
        return LP.NoBadWordsLogitsProcessor([list(s) for s in stage["bad_words_ids"]], stage["eos"])
    if op == "sequence_bias":
        return LP.SequenceBiasLogitsProcessor([[list(s), float(b)] for s, b in stage["sequence_bias"]])
    if op == "suppress_tokens":
        return LP.SuppressTokensLogitsProcessor(stage["ids"])
    if op == "suppress_tokens_at_begin":
        # transformers' generate sets begin_index to the prompt length (decoder-only).
        return LP.SuppressTokensAtBeginLogitsProcessor(stage["ids"], begin_index=prompt_len)
    if op == "min_new_tokens":
        return LP.MinNewTokensLengthLogitsProcessor(prompt_len, stage["min_new_tokens"], stage["eos"])
    if op == "exponential_decay":
        # generate() passes the prompt length as input_ids_seq_length.
        return LP.ExponentialDecayLengthPenalty(
            (stage["start_index"], float(stage["decay_factor"])), stage["eos"], prompt_len
        )
    if op == "forced_bos":
        return LP.ForcedBOSTokenLogitsProcessor(stage["bos"])
    if op == "forced_eos":
        return LP.ForcedEOSTokenLogitsProcessor(stage["max_length"], stage["eos"])
    raise ValueError(op)


# The parameter of each truncation, as `build_hf` names it in the stage and as the
# transformers object stores it (perturbed after construction, so that values just past
# the class's validation range can be probed).
TRUNCATION_PARAMS = {
    "top_p": ("top_p", "top_p"),
    "min_p": ("min_p", "min_p"),
    "typical": ("mass", "mass"),
    "epsilon": ("epsilon", "epsilon"),
    "eta": ("epsilon", "epsilon"),
    "top_h": ("top_h", "top_h"),
}

# Relative perturbation of a truncation threshold that stands for fp32 rounding noise in
# the quantities compared with it (8 to 16 f32 ulps).
PERTURBATION = 1e-6


def perturb(proc, op, factor):
    """Moves the threshold a truncation compares with by `factor` (relative)."""
    _, attr = TRUNCATION_PARAMS[op]
    value = getattr(proc, attr)
    if op == "top_p":
        # The comparison is `cum <= 1 - top_p`: move 1 - top_p.
        proc.top_p = 1.0 - (1.0 - value) * factor
    elif op == "min_p":
        # `p < min_p * p_max`; past 1 it would compare equal probabilities with
        # themselves, which rounding cannot separate.
        proc.min_p = min(1.0, value * factor)
    elif isinstance(value, torch.Tensor):
        setattr(proc, attr, value * factor)
    else:
        setattr(proc, attr, float(value) * factor)


def typical_with_entropy_shift(proc, input_ids, scores, ulps: int):
    """transformers' TypicalLogitsWarper.__call__ (5.24), statement for statement, except
    that the entropy is moved by `ulps` f32 ulps: torch's f32 `nansum` is a few ulps off
    the correctly rounded entropy, by an amount that depends on the reduction order (and
    so on the thread count and the CPU's vector width)."""
    normalized = torch.nn.functional.log_softmax(scores, dim=-1)
    p = torch.exp(normalized)
    ent = -(normalized * p).nansum(-1, keepdim=True)
    toward = torch.full_like(ent, math.inf if ulps > 0 else -math.inf)
    for _ in range(abs(ulps)):
        ent = torch.nextafter(ent, toward)
    shifted_scores = torch.abs((-normalized) - ent)
    sorted_scores, sorted_indices = LP.torch.sort(shifted_scores, descending=False)
    sorted_logits = scores.gather(-1, sorted_indices)
    cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    last_ind = (cumulative_probs < proc.mass).sum(dim=1)
    last_ind.clamp_(max=sorted_scores.shape[-1] - 1)
    sorted_indices_to_remove = sorted_scores > sorted_scores.gather(1, last_ind.view(-1, 1))
    sorted_indices_to_remove[..., : proc.min_tokens_to_keep] = 0
    indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
    return scores.masked_fill(indices_to_remove, proc.filter_value)


# Entropy shifts (in f32 ulps) tried for typical's rounding sensitivity.
ENTROPY_ULPS = (-4, -3, -2, -1, 1, 2, 3, 4)


def run_chain(
    stages, row, history, prompt_len, tie_rule: bool, dtype=np.float32, threads=1, perturbed=None, entropy=None
):
    """Runs the stages; returns the output row after every stage and the value ops.

    `perturbed = (stage index, factor)` multiplies that truncation's parameter;
    `entropy = (stage index, ulps)` runs that typical stage with its entropy moved."""
    saved = LP.torch
    if tie_rule:
        LP.torch = TieRuleTorch()
    torch.set_num_threads(threads)
    try:
        input_ids = torch.tensor([history], dtype=torch.long) if history else torch.zeros((1, 0), dtype=torch.long)
        scores = torch.from_numpy(row.astype(dtype)).unsqueeze(0)
        outs = []
        ops = []
        for i, stage in enumerate(stages):
            proc = build_hf(stage, prompt_len)
            if perturbed is not None and perturbed[0] == i:
                perturb(proc, stage["op"], perturbed[1])
            before = scores.clone()
            if entropy is not None and entropy[0] == i:
                scores = typical_with_entropy_shift(proc, input_ids, scores.clone(), entropy[1])
            else:
                scores = proc(input_ids, scores.clone())
            out = scores[0].numpy().copy()
            assert out.dtype == dtype
            if stage["op"] == "temperature":
                ops.append(["div", f32_hex(np.float32(stage["temperature"]))])
            elif stage["op"] == "log_softmax" and dtype == np.float32:
                b = before[0].numpy()
                am = int(np.argmax(b))
                ops.append(["sub", f32_hex(b[am])])
                ops.append(["sub", f32_hex(-out[am])])
            outs.append(out)
        return outs, ops
    finally:
        LP.torch = saved
        torch.set_num_threads(1)


def generate_skips(stage: dict) -> str | None:
    """Why transformers' `generate` would not add this stage at all, if it would not."""
    if stage["op"] == "top_p" and stage["top_p"] >= 1.0:
        return "generate adds TopPLogitsWarper only when top_p < 1.0"
    if stage["op"] == "typical" and stage["mass"] >= 1.0:
        return "generate adds TypicalLogitsWarper only when typical_p < 1.0"
    if stage["op"] == "temperature" and stage["temperature"] == 1.0:
        return "generate adds TemperatureLogitsWarper only when temperature != 1.0"
    return None


# ---------------------------------------------------------------------------------------
# Output encoding.
# ---------------------------------------------------------------------------------------


def f32_hex(x) -> str:
    return f"{int(np.array(x, dtype=np.float32).view(np.uint32)):08x}"


def apply_ops(row: np.ndarray, ops) -> np.ndarray:
    x = row.copy()
    with np.errstate(all="ignore"):
        for op, bits in ops:
            c = np.array([int(bits, 16)], dtype=np.uint32).view(np.float32)[0]
            if op == "div":
                x = (x / c).astype(np.float32)
            elif op == "sub":
                x = (x - c).astype(np.float32)
            else:
                raise ValueError(op)
    return x


def encode_ids(ids: np.ndarray, vocab: int, key_list: str):
    """The shorter of an explicit sorted id list and a bitmap."""
    as_list = {key_list: [int(i) for i in ids]}
    bits = np.zeros(vocab, dtype=np.uint8)
    bits[ids] = 1
    packed = np.packbits(bits, bitorder="little").tobytes()
    as_bitmap = {key_list + "_bitmap": base64.b64encode(packed).decode()}
    if len(json.dumps(as_list)) <= len(json.dumps(as_bitmap)):
        return as_list
    return as_bitmap


def encode_expected(inp: np.ndarray, out: np.ndarray, ops) -> dict:
    assert not np.isnan(out).any(), "transformers produced NaN"
    assert not (out == np.inf).any(), "transformers produced +inf"
    fin_in = np.isfinite(inp)
    fin_out = np.isfinite(out)
    # Only a forcing stage (forced BOS/EOS) brings a masked token back; the
    # "removed" form cannot say so, the "kept" form can.
    revived = (fin_out & ~fin_in).any()
    kept = np.nonzero(fin_out)[0]
    removed = np.nonzero(fin_in & ~fin_out)[0]
    vocab = len(inp)
    a = encode_ids(kept, vocab, "kept")
    b = encode_ids(removed, vocab, "removed")
    mask = a if revived or len(json.dumps(a)) < len(json.dumps(b)) else b
    pred = apply_ops(inp, ops)
    differ = kept[pred[kept].view(np.uint32) != out[kept].view(np.uint32)]
    exceptions = [[int(i), f32_hex(out[i])] for i in differ]
    enc = {"finite": int(len(kept)), "mask": mask, "ops": ops, "exceptions": exceptions}
    return enc


# ---------------------------------------------------------------------------------------
# The cases.
# ---------------------------------------------------------------------------------------


def fmt(x) -> str:
    return repr(x) if not isinstance(x, float) else f"{x:g}"


def label(params: dict) -> str:
    return ",".join(f"{k}={fmt(v)}" for k, v in params.items()) or "-"


def make_history(rng: random.Random, vocab: int, length: int, prompt_len: int):
    """Random tokens, ending with a copy of an earlier 3-token segment, so that the
    suffix of every length <= 3 occurs earlier too (n-gram bans for n <= 4)."""
    body = [rng.randrange(vocab) for _ in range(length - 3)]
    j = rng.randrange(0, len(body) - 4)
    tokens = body + body[j : j + 3]
    return tokens, prompt_len


# Parameter grids: (params, vocabs) per warper. `top_k: 60000` exceeds every V.
WARPERS = {
    "temperature": [{"temperature": t} for t in (0.7, 1.3, 0.25, 2.0, 0.05)],
    "top_k": [
        {"top_k": k, "min_tokens_to_keep": m}
        for k, m in ((1, 1), (5, 1), (50, 1), (3, 10), (60000, 1))
    ],
    "top_p": [
        {"top_p": p, "min_tokens_to_keep": m}
        for p, m in ((0.9, 1), (0.5, 1), (0.95, 3), (0.999999, 1), (1.0, 1), (1e-6, 1), (0.0, 1), (0.3, 20))
    ],
    "min_p": [
        {"min_p": p, "min_tokens_to_keep": m}
        for p, m in ((0.1, 1), (0.05, 1), (0.5, 1), (0.0, 1), (1.0, 1), (0.2, 5))
    ],
    "typical": [
        {"mass": p, "min_tokens_to_keep": m}
        for p, m in ((0.9, 1), (0.5, 1), (0.2, 1), (0.999, 1), (0.01, 1), (0.5, 4))
    ],
    "epsilon": [
        {"epsilon": e, "min_tokens_to_keep": m}
        for e, m in ((3e-4, 1), (0.01, 1), (0.1, 1), (0.5, 1), (0.3, 3), (0.9, 1))
    ],
    "eta": [
        {"epsilon": e, "min_tokens_to_keep": m}
        for e, m in ((3e-4, 1), (2e-3, 1), (0.05, 1), (0.5, 1), (0.3, 3))
    ],
    "top_h": [{"top_h": h} for h in (0.4, 0.7, 1.0, 0.05)],
    "log_softmax": [{}],
}


def history_cases(group: str, vocab: int, seed: int):
    """(params, tokens, prompt_len) for the history-based processors, built from the
    history so that the interesting paths (matches, bans, sums) are exercised."""
    rng = random.Random(seed)
    tokens, prompt_len = make_history(rng, vocab, 24, 15)
    out = []
    if group == "repetition_penalty":
        for theta in (1.3, 0.7, 2.0):
            out.append(({"penalty": theta}, tokens, prompt_len))
    elif group == "no_repeat_ngram":
        for n in (1, 2, 3, 4):
            out.append(({"ngram_size": n}, tokens, prompt_len))
        out.append(({"ngram_size": 3}, tokens[:2], 2))  # shorter than n: no-op
    elif group == "bad_words":
        eos = rng.randrange(vocab)
        a, b, c, d = (rng.randrange(vocab) for _ in range(4))
        seqs = [
            [a],                              # single token: always banned
            [eos],                            # EOS alone: dropped by transformers
            [tokens[-1], b],                  # prefix matches: b banned
            [tokens[-2], tokens[-1], c],      # longer prefix matches: c banned
            [tokens[-2], c, d],               # prefix does not match (unless by chance)
            [eos, d],                         # contains EOS but not EOS alone: kept
            [d] + tokens + [b],               # prefix longer than the history: ignored
        ]
        out.append(({"bad_words_ids": seqs, "eos": [eos]}, tokens, prompt_len))
        out.append(({"bad_words_ids": [[tokens[-1], a], [b, b]], "eos": [eos, a]}, tokens, prompt_len))
    elif group == "sequence_bias":
        a, b, c, z = (rng.randrange(vocab) for _ in range(4))
        bias = [
            [[a], 2.5],
            [[b], -1.25],
            [[tokens[-1], c], 3.0],
            [[tokens[-2], tokens[-1], a], -0.75],  # same last token as [a]: the biases add
            [[z, tokens[-1], b], 10.0],            # prefix does not match (unless by chance)
            [[c] + tokens + [b], 5.0],             # prefix longer than the history: ignored
        ]
        out.append(({"sequence_bias": bias}, tokens, prompt_len))
        out.append(({"sequence_bias": [[[tokens[-1], tokens[0]], -4.5], [[c], 0.125]]}, tokens, prompt_len))
    elif group == "suppress_tokens":
        ids = [rng.randrange(vocab) for _ in range(5)]
        out.append(({"ids": ids + ids[:2]}, tokens, prompt_len))
        out.append(({"ids": [0, vocab - 1]}, tokens, prompt_len))
    elif group == "suppress_tokens_at_begin":
        ids = [rng.randrange(vocab) for _ in range(4)] + [0]
        out.append(({"ids": ids}, tokens[:prompt_len], prompt_len))  # first generated position
        out.append(({"ids": ids}, tokens, prompt_len))  # later: no-op
    elif group == "min_new_tokens":
        e1, e2 = rng.randrange(vocab), rng.randrange(vocab)
        out.append(({"min_new_tokens": 3, "eos": [e1]}, tokens[: prompt_len + 1], prompt_len))
        out.append(({"min_new_tokens": 5, "eos": [e1, e2]}, tokens[:prompt_len], prompt_len))
        out.append(({"min_new_tokens": 3, "eos": [e1, e2]}, tokens[: prompt_len + 3], prompt_len))
    elif group == "exponential_decay":
        e1, e2 = rng.randrange(vocab), rng.randrange(vocab)
        st = lambda start, factor, eos: {"start_index": start, "decay_factor": factor, "eos": eos}
        out.append((st(2, 1.05, [e1]), tokens[: prompt_len + 2], prompt_len))  # at the start: no-op
        out.append((st(2, 1.05, [e1]), tokens[: prompt_len + 3], prompt_len))  # one step past
        out.append((st(1, 1.3, [e1, e2]), tokens, prompt_len))                 # several steps, two ids
        out.append((st(0, 0.8, [e1, e2, e1]), tokens, prompt_len))             # decaying, a repeat
        out.append((st(0, 40.0, [e2]), tokens, prompt_len))                    # a large factor
    elif group == "forced_bos":
        b = rng.randrange(vocab)
        out.append(({"bos": b}, tokens[:1], 1))  # one-token history: forced
        out.append(({"bos": b}, tokens[:2], 1))  # later: no-op
        out.append(({"bos": vocab - 1}, tokens[:1], 0))
    elif group == "forced_eos":
        e1, e2 = rng.randrange(vocab), rng.randrange(vocab)
        out.append(({"max_length": prompt_len + 4, "eos": [e1]}, tokens[: prompt_len + 3], prompt_len))
        out.append(({"max_length": len(tokens) + 1, "eos": [e1, e2, e1]}, tokens, prompt_len))
        out.append(({"max_length": len(tokens) + 2, "eos": [e1]}, tokens, prompt_len))  # not yet: no-op
        out.append(({"max_length": len(tokens), "eos": [e2]}, tokens, prompt_len))      # past it: no-op
    else:
        raise ValueError(group)
    return out


HISTORY_GROUPS = (
    "repetition_penalty",
    "no_repeat_ngram",
    "bad_words",
    "sequence_bias",
    "suppress_tokens",
    "suppress_tokens_at_begin",
    "min_new_tokens",
    "exponential_decay",
    "forced_bos",
    "forced_eos",
)


def chain_cases(vocab: int, seed: int):
    """(label, stages, tokens, prompt_len)."""
    rng = random.Random(seed)
    tokens, prompt_len = make_history(rng, vocab, 24, 15)
    st = lambda op, **kw: {"op": op, **kw}
    eos = rng.randrange(vocab)
    return [
        ("temp0.7>topk50>topp0.9",
         [st("temperature", temperature=0.7), st("top_k", top_k=50, min_tokens_to_keep=1),
          st("top_p", top_p=0.9, min_tokens_to_keep=1)], [], 0),
        ("reppen1.3>ngram2>minp0.1",
         [st("repetition_penalty", penalty=1.3), st("no_repeat_ngram", ngram_size=2),
          st("min_p", min_p=0.1, min_tokens_to_keep=1)], tokens, prompt_len),
        ("temp>topk>topp>minp>typical>eps>eta",
         [st("temperature", temperature=0.9), st("top_k", top_k=200, min_tokens_to_keep=1),
          st("top_p", top_p=0.95, min_tokens_to_keep=1), st("min_p", min_p=0.02, min_tokens_to_keep=1),
          st("typical", mass=0.95, min_tokens_to_keep=1), st("epsilon", epsilon=3e-4, min_tokens_to_keep=1),
          st("eta", epsilon=3e-4, min_tokens_to_keep=1)], [], 0),
        ("temp0.7>topk50>topp0.9>logsoftmax",
         [st("temperature", temperature=0.7), st("top_k", top_k=50, min_tokens_to_keep=1),
          st("top_p", top_p=0.9, min_tokens_to_keep=1), st("log_softmax")], [], 0),
        ("reppen1.2>temp1.5>logsoftmax",
         [st("repetition_penalty", penalty=1.2), st("temperature", temperature=1.5), st("log_softmax")],
         tokens, prompt_len),
        ("generate_order",
         [st("sequence_bias", sequence_bias=[[[tokens[-1], tokens[3]], 1.5], [[tokens[5]], -2.0]]),
          st("repetition_penalty", penalty=1.1), st("no_repeat_ngram", ngram_size=3),
          st("bad_words", bad_words_ids=[[tokens[-1], tokens[7]], [tokens[9]]], eos=[eos]),
          st("min_new_tokens", min_new_tokens=20, eos=[eos]),
          st("suppress_tokens", ids=[tokens[11]]),
          st("suppress_tokens_at_begin", ids=[tokens[12]]),
          st("temperature", temperature=0.8), st("top_k", top_k=50, min_tokens_to_keep=1),
          st("top_p", top_p=0.95, min_tokens_to_keep=1)], tokens, prompt_len),
        ("temp0.6>toph0.5>topk20",
         [st("temperature", temperature=0.6), st("top_h", top_h=0.5),
          st("top_k", top_k=20, min_tokens_to_keep=1)], [], 0),
        ("topk10mtk3>topp0.4mtk5>typical0.6mtk2",
         [st("top_k", top_k=10, min_tokens_to_keep=3), st("top_p", top_p=0.4, min_tokens_to_keep=5),
          st("typical", mass=0.6, min_tokens_to_keep=2)], [], 0),
        ("minp0.05>temp2>epsilon1e-3mtk2>logsoftmax",
         [st("min_p", min_p=0.05, min_tokens_to_keep=1), st("temperature", temperature=2.0),
          st("epsilon", epsilon=1e-3, min_tokens_to_keep=2), st("log_softmax")], [], 0),
    ]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a.view(np.uint32), b.view(np.uint32))


def make_case(group, name, stages, shape, vocab, seed, tokens, prompt_len):
    row = make_row(seed, shape, vocab)
    case = {
        "name": name,
        "stages": stages,
        "input": {"vocab": vocab, "shape": shape, "seed": seed, "fnv1a": fnv1a_bits(row)},
    }
    if tokens or any(s["op"] in HISTORY_OPS for s in stages):
        case["history"] = {"tokens": tokens, "prompt_len": prompt_len}

    # Stages that generate() would not add are left out of the expectation.
    skips = {i: why for i, st in enumerate(stages) if (why := generate_skips(st))}
    effective = [st for i, st in enumerate(stages) if i not in skips]
    if skips:
        class_out, _ = run_chain(stages, row, tokens, prompt_len, tie_rule=True)
        case["generate_skips"] = {
            "stages": sorted(skips),
            "reason": "; ".join(sorted(set(skips.values()))),
            "class_finite": int(np.isfinite(class_out[-1]).sum()),
        }

    real, _ = run_chain(effective, row, tokens, prompt_len, tie_rule=False)
    rule, ops_rule = run_chain(effective, row, tokens, prompt_len, tie_rule=True)
    expected = rule[-1] if rule else row
    case["expected"] = encode_expected(row, expected, ops_rule)

    if not all(same_bits(a, b) for a, b in zip(real, rule)):
        first = next(i for i, (a, b) in enumerate(zip(real, rule)) if not same_bits(a, b))
        hf_fin, rule_fin = np.isfinite(real[first]), np.isfinite(rule[first])
        differ = np.nonzero(hf_fin != rule_fin)[0]
        assert hf_fin.sum() == rule_fin.sum(), f"{name}: tie order changed the number of survivors"
        # The ids kept by one order and not by the other should share their scores.
        stage_in = row if first == 0 else rule[first - 1]
        hf_only = stage_in[differ[hf_fin[differ]]].view(np.uint32).tolist()
        rule_only = stage_in[differ[rule_fin[differ]]].view(np.uint32).tolist()
        if set(hf_only) != set(rule_only):
            print(f"warning: {name}: the orders differ on tokens whose scores are not equal", file=sys.stderr)
        case["boundary_tie"] = {
            "stage": first,
            "reason": (
                f"transformers' {effective[first]['op']} orders equal scores with an unstable "
                f"torch.sort/torch.topk; its own output keeps {int(hf_fin.sum())} tokens like the "
                f"tie rule, but {len(differ)} tied ids differ, so the expected output is "
                "transformers run with the tie rule (score descending, higher id first)"
            ),
            "hf_kept": int(hf_fin.sum()),
            "ids_differing": int(len(differ)),
        }

    # Rounding sensitivity: the same transformers code in f64, with 4 threads (another
    # reduction order) and with each truncation parameter moved by PERTURBATION. Tokens
    # whose fate changes between these runs sit on a boundary that fp32 rounding decides.
    variants = {"f64": run_chain(effective, row, tokens, prompt_len, True, dtype=np.float64)[0]}
    variants["4 threads"] = run_chain(effective, row, tokens, prompt_len, True, threads=4)[0]
    for i, st in enumerate(effective):
        if st["op"] in TRUNCATION_PARAMS and st[TRUNCATION_PARAMS[st["op"]][0]] > 0:
            for sign, factor in (("-", 1 - PERTURBATION), ("+", 1 + PERTURBATION)):
                key = f"{st['op']}#{i} {sign}{PERTURBATION:g}"
                variants[key] = run_chain(effective, row, tokens, prompt_len, True, perturbed=(i, factor))[0]
    for i, st in enumerate(effective):
        if st["op"] == "typical":
            replica = run_chain(effective, row, tokens, prompt_len, True, entropy=(i, 0))[0]
            assert all(same_bits(a, b) for a, b in zip(replica, rule)), f"{name}: typical replica drifted"
            for ulps in ENTROPY_ULPS:
                key = f"typical#{i} entropy {ulps:+d} ulp"
                variants[key] = run_chain(effective, row, tokens, prompt_len, True, entropy=(i, ulps))[0]
    fin = np.isfinite(expected)
    ambiguous = np.zeros(vocab, dtype=bool)
    changed = []
    for key, outs in variants.items():
        if not outs:
            continue
        flips = np.isfinite(outs[-1]) != fin
        if flips.any():
            changed.append(f"{key}: {int(flips.sum())}")
            ambiguous |= flips
    if ambiguous.any():
        case["fp_sensitive"] = {
            "reason": (
                "the fate of some tokens depends on fp32 rounding: the same transformers code "
                "decides them differently in " + ", ".join(changed)
            ),
            **encode_ids(np.nonzero(ambiguous)[0], vocab, "ambiguous"),
        }
    return case


HISTORY_OPS = set(HISTORY_GROUPS)


def generate():
    files = {}
    for group, grid in WARPERS.items():
        cases = []
        for params in grid:
            for vocab in VOCABS:
                for shape in SHAPES:
                    name = f"{group}/{label(params)}/V{vocab}/{shape}"
                    stages = [{"op": group, **params}]
                    cases.append(make_case(group, name, stages, shape, vocab, case_seed(name), [], 0))
        files[group] = cases
    for group in HISTORY_GROUPS:
        cases = []
        for vocab in VOCABS:
            for shape in SHAPES:
                base = f"{group}/V{vocab}/{shape}"
                for i, (params, tokens, prompt_len) in enumerate(history_cases(group, vocab, case_seed(base))):
                    name = f"{group}/#{i}/V{vocab}/{shape}"
                    stages = [{"op": group, **params}]
                    cases.append(make_case(group, name, stages, shape, vocab, case_seed(name), tokens, prompt_len))
        files[group] = cases
    cases = []
    for vocab in VOCABS:
        for shape in SHAPES:
            base = f"chains/V{vocab}/{shape}"
            for lbl, stages, tokens, prompt_len in chain_cases(vocab, case_seed(base)):
                name = f"chains/{lbl}/V{vocab}/{shape}"
                cases.append(make_case("chains", name, stages, shape, vocab, case_seed(name), tokens, prompt_len))
    files["chains"] = cases
    return files


def render(group, cases) -> str:
    doc = {
        "format": FORMAT_VERSION,
        "generated_by": "scripts/hf_fixtures.py",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__.split("+")[0],
        "cases": cases,
    }
    # One case per line: diffs stay readable and the files stay small.
    lines = [json.dumps({k: v for k, v in doc.items() if k != "cases"})[:-1] + ', "cases": [']
    for i, case in enumerate(cases):
        lines.append(json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else ""))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the stored files instead of writing")
    ap.add_argument("--only", nargs="+", metavar="GROUP", help="write or check these files only")
    args = ap.parse_args()
    files = generate()
    if args.only:
        files = {g: c for g, c in files.items() if g in args.only}
    os.makedirs(OUT_DIR, exist_ok=True)
    status = 0
    total = 0
    ties = []
    fragile = []
    skipped = []
    for group, cases in files.items():
        text = render(group, cases)
        path = os.path.join(OUT_DIR, f"{group}.json")
        total += len(text)
        ties += [c["name"] for c in cases if "boundary_tie" in c]
        fragile += [c["name"] for c in cases if "fp_sensitive" in c]
        skipped += [c["name"] for c in cases if "generate_skips" in c]
        if args.check:
            with open(path) as f:
                if f.read() != text:
                    print(f"differs: {path}", file=sys.stderr)
                    status = 1
        else:
            with open(path, "w") as f:
                f.write(text)
        print(f"{group}: {len(cases)} cases, {len(text) / 1024:.0f} KiB")
    print(f"total: {sum(len(c) for c in files.values())} cases, {total / 1024:.0f} KiB")
    print(f"boundary_tie cases: {len(ties)}")
    for t in ties:
        print(f"  {t}")
    print(f"fp_sensitive cases: {len(fragile)}")
    for t in fragile:
        print(f"  {t}")
    print(f"generate_skips cases: {len(skipped)}")
    for t in skipped:
        print(f"  {t}")
    sys.exit(status)


if __name__ == "__main__":
    main()
