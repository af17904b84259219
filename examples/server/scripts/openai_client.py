#!/usr/bin/env python3
"""Exercises a running gpt2-server with the official `openai` Python package.

Start the server, then run this script against it:

    cargo run --release -p gpt2-server -- --port 8000 &
    python3 -m venv fixtures-venv && fixtures-venv/bin/pip install openai
    fixtures-venv/bin/python examples/server/scripts/openai_client.py --base-url http://127.0.0.1:8000/v1

Every check is an assertion; the script prints one line per check and exits non-zero on the
first failure. It needs only the `openai` package (no model hub, no API key: the server
ignores the key the client sends).
"""

import argparse
import concurrent.futures
import sys

import openai
from openai import OpenAI

MODEL = "gpt2"


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key="unused", max_retries=0)

    models = client.models.list()
    check("models.list names the served model", [m.id for m in models.data] == [MODEL])

    common = dict(model=MODEL, max_tokens=24, seed=7, temperature=0.9,
                  extra_body={"ignore_eos": True})
    first = client.completions.create(prompt="Once upon a time", **common)
    again = client.completions.create(prompt="Once upon a time", **common)
    choice = first.choices[0]
    check("completion: text, finish_reason, usage",
          choice.text and choice.finish_reason == "length"
          and first.usage.completion_tokens == 24 and first.usage.prompt_tokens == 4)
    check("completion: the same seed gives the same text", choice.text == again.choices[0].text)

    streamed = client.completions.create(prompt="Once upon a time", stream=True, **common)
    text = "".join(chunk.choices[0].text for chunk in streamed if chunk.choices)
    check("completion stream equals the non-streamed text", text == choice.text,
          f"{text!r} != {choice.text!r}")

    several = client.completions.create(prompt=["Once upon a time", "The king"], n=2, **common)
    check("two prompts × n=2: four choices, indexed in order",
          [c.index for c in several.choices] == [0, 1, 2, 3]
          and several.choices[0].text == choice.text)

    with_logprobs = client.completions.create(prompt="The queen", model=MODEL, max_tokens=5,
                                              temperature=0, logprobs=2)
    lp = with_logprobs.choices[0].logprobs
    check("completion logprobs: one entry per token, two alternatives",
          len(lp.tokens) == 5 and all(len(t) == 2 for t in lp.top_logprobs)
          and "".join(lp.tokens) == with_logprobs.choices[0].text)

    base = client.completions.create(prompt="The king said", model=MODEL, max_tokens=30,
                                     temperature=0, extra_body={"ignore_eos": True})
    words = base.choices[0].text.split()
    stop = words[len(words) // 2] if words else "the"
    stopped = client.completions.create(prompt="The king said", model=MODEL, max_tokens=30,
                                        temperature=0, stop=[stop],
                                        extra_body={"ignore_eos": True})
    check("stop string cuts the text",
          stopped.choices[0].finish_reason == "stop"
          and stopped.choices[0].text == base.choices[0].text[:base.choices[0].text.find(stop)])

    messages = [{"role": "system", "content": "You tell short stories."},
                {"role": "user", "content": "Tell me about a dragon."}]
    chat = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=20, seed=3,
                                          logprobs=True, top_logprobs=2)
    reply = chat.choices[0]
    check("chat: an assistant message with logprobs",
          reply.message.role == "assistant" and reply.finish_reason in ("stop", "length")
          and len(reply.logprobs.content) == chat.usage.completion_tokens)
    stream = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=20, seed=3,
                                            stream=True, stream_options={"include_usage": True})
    parts, usage = [], None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            parts.append(c.delta.content or "")
    check("chat stream equals the non-streamed reply, with usage",
          "".join(parts) == reply.message.content
          and usage.completion_tokens == chat.usage.completion_tokens)

    extras = client.completions.create(prompt="Once", model=MODEL, max_tokens=8, seed=1,
                                       presence_penalty=0.5, frequency_penalty=0.5,
                                       logit_bias={"13": -100}, top_p=0.9,
                                       extra_body={"top_k": 40, "min_p": 0.05,
                                                   "repeat_penalty": 1.1})
    check("penalties, logit_bias and llama-server's fields are accepted",
          extras.choices[0].text is not None)

    def one(seed):
        r = client.completions.create(prompt="Story:", model=MODEL, max_tokens=16, seed=seed,
                                      extra_body={"ignore_eos": True})
        return r.choices[0].text
    alone = [one(s) for s in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(one, range(8)))
    check("8 concurrent seeded requests get their lone texts", together == alone)

    for name, kwargs, error in [
        ("temperature -1", dict(temperature=-1), openai.BadRequestError),
        ("top_p 2", dict(top_p=2), openai.BadRequestError),
        ("n 0", dict(n=0), openai.BadRequestError),
        ("an unknown model", dict(model="gpt-4"), openai.NotFoundError),
        ("a prompt over the context", dict(prompt="word " * 5000), openai.BadRequestError),
    ]:
        try:
            client.completions.create(**{"model": MODEL, "prompt": "x", "max_tokens": 2, **kwargs})
            check(f"error: {name}", False, "no error")
        except error as e:
            body = e.body if isinstance(e.body, dict) else {}
            check(f"error: {name} ({e.status_code}, param {body.get('param')})",
                  "message" in body and "type" in body)

    print("all checks passed")


if __name__ == "__main__":
    main()
