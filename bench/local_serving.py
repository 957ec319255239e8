"""One serve-local process routing both local models, or one process per model? Throughput with both busy at once.

    .venv/bin/python bench/local_serving.py [--calls 6]

Both layouts run the same llama.cpp servers (2 slots, a thread per core each); what differs is whether they share
one process. Each model gets ``--calls`` requests (64-token answers, temperature 0), 2 in flight per model, after a
warm-up call. Printed: completion tokens per second over all calls for each layout, and the ratio of the two. On a
machine shared with other work the figures move from run to run: run it a few times. Model numbers, not OpenAI's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
IN_FLIGHT = 2  # per model: its slots


def _start(flags: list[str]) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.testing.local", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def _call(url: str, model: str, i: int) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": f"Write a story about robot {i}."}]}
    data = json.dumps(body | {"max_tokens": 64, "temperature": 0}).encode()
    request = urllib.request.Request(url + "/chat/completions", data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as reply:
        return int(json.loads(reply.read())["usage"]["completion_tokens"])


def _throughput(urls: dict[str, str], calls: int) -> float:
    for model in MODELS:
        _call(urls[model], model, -1)  # warm-up: loads and caches
    jobs = [(urls[m], m, i) for i in range(calls) for m in MODELS]
    start = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT * len(MODELS)) as pool:
        tokens = sum(pool.map(lambda job: _call(*job), jobs))
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6, help="requests per model and layout")
    calls = parser.parse_args().calls
    child, url = _start([])
    try:
        one = _throughput(dict.fromkeys(MODELS, url), calls)
    finally:
        child.terminate()
        child.wait()
    children = [_start(["--model", model]) for model in MODELS]
    try:
        two = _throughput({m: u for m, (_, u) in zip(MODELS, children, strict=True)}, calls)
    finally:
        for process, _ in children:
            process.terminate()
            process.wait()
    print(f"one process, both models:  {one:6.1f} tokens/s")
    print(f"one process per model:     {two:6.1f} tokens/s  ({two / one:.2f}× the one-process figure)")


if __name__ == "__main__":
    main()
