"""The real local endpoint: llama.cpp's own server (xllamacpp) serving the registry's local models on 127.0.0.1.

Which models are local, where their GGUF files come from and how to install them is data: the ``local`` key of their
entries in ``harness/tokens/data/models.yaml`` (``harness.tokens._models.LocalFile``). One base_url serves them all,
each under its alias: every model gets its own llama.cpp server on an internal port, and a small router in front sends
each request to the server of the model its body names (llama.cpp itself answers whatever ``model`` is asked). One
router rather than a server per model on ports of its own: the same llama.cpp work either way (measured on 2 cores, see
the README), and one URL for ``endpoint: local`` and ``PROMPTVCR_LOCAL_URL``.

``promptvcr serve-local`` runs it in the foreground. A recording run that needs it and finds none answering starts
one in a child process (``ensure_running``) that loads each model when the first request for it arrives, so only
what the run's variants name is loaded, and stops it at the end. Model files are never copied into the repository.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
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
from ..tokens import _models as models
from ._local_router import Router

DEFAULT_PORT = 8765
SLOTS = 2  # two cores: two parallel slots keep both busy without thrashing
SLOT_CONTEXT = 4096  # tokens per slot: the context window a case sees (recorded in the price table as data)
STARTUP_TIMEOUT_S = 120.0
XLLAMACPP_INSTALL = "pip install 'xllamacpp>=2026.10'"  # as pyproject's `local` extra pins it
LOG_LINES_SHOWN = 15  # of the child's log, in the error when it did not start


def cache_dir() -> Path:
    return Path(os.environ.get("PROMPTVCR_CACHE", Path.home() / ".cache" / "promptvcr"))


def aliases() -> list[str]:
    """The local models of the registry, in its order."""
    return [name for name, entry in models.registry().items() if entry.local is not None and name == entry.name]


def _spec(alias: str) -> models.LocalFile:
    entry = models.lookup(alias)
    if entry is None or entry.local is None:
        known = ", ".join(aliases())
        raise LocalServerError(f"{alias!r} is not a local model (local models in {models.REGISTRY_FILE}: {known})")
    return entry.local


def model_path(alias: str) -> Path:
    """The model's GGUF file; LocalServerError with the install command when its package is missing."""
    spec = _spec(alias)
    found = importlib.util.find_spec(spec.module)
    if found is None:
        raise LocalServerError(f"the local model {alias} is not installed: run `{spec.install}`")
    if spec.file is None:  # split into parts across packages: the package assembles it into the cache
        module = importlib.import_module(spec.module)
        return Path(module.assemble(cache_dir() / module.MODEL_NAME))
    # Located, not imported: a package shipping only the file may import dependencies that were not installed.
    path = Path(next(iter(found.submodule_search_locations or [""]))) / spec.file
    if not path.is_file():
        raise LocalServerError(f"the local model {alias} has no file {path}: run `{spec.install}`")
    return path


def check_installed(alias: str) -> None:
    """Raise LocalServerError (with the command to run) unless llama.cpp and a local model's package are installed."""
    spec = _spec(alias)
    if importlib.util.find_spec("xllamacpp") is None:
        raise LocalServerError(f"llama.cpp (xllamacpp) is not installed: run `{XLLAMACPP_INSTALL}`")
    if importlib.util.find_spec(spec.module) is None:
        raise LocalServerError(f"the local model {alias} is not installed: run `{spec.install}`")


def root_url(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def answers(base_url: str, timeout: float = 2.0) -> bool:
    """Whether a llama.cpp server (or the router) at ``base_url`` reports itself healthy."""
    try:
        with urllib.request.urlopen(root_url(base_url) + "/health", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def serve_model(alias: str, slots: int = SLOTS, slot_context: int = SLOT_CONTEXT, threads: int = 0) -> object:
    """One llama.cpp server for one model on an internal port; returns the server object (keep it alive)."""
    try:
        import xllamacpp
    except ImportError:
        raise LocalServerError(f"llama.cpp (xllamacpp) is not installed: run `{XLLAMACPP_INSTALL}`") from None
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path(alias))
    params.model_alias = {alias}
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_parallel = slots
    params.n_ctx = slots * slot_context
    params.cpuparams.n_threads = threads or os.cpu_count() or 2
    params.cpuparams_batch.n_threads = threads or os.cpu_count() or 2
    server = xllamacpp.Server(params)
    if not _wait(server.listening_address):
        raise LocalServerError(f"llama.cpp did not answer for {alias} within {STARTUP_TIMEOUT_S:.0f} s")
    return server


def main(argv: list[str] | None = None) -> int:
    """Foreground server: prints its base_url once it answers, stops cleanly on Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="promptvcr serve-local", description=main.__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--slots", type=int, default=SLOTS, help="parallel request slots per model")
    parser.add_argument(
        "--model",
        action="append",
        choices=aliases(),
        help="a model to serve (repeat for more; default: every local model)",
    )
    parser.add_argument(
        "--on-demand", action="store_true", help="load each model at its first request instead of at start"
    )
    args = cliargs.parse(parser, argv)
    chosen = args.model or aliases()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    when = "on demand" if args.on_demand else "now"
    print(
        f"starting llama.cpp ({', '.join(chosen)} loaded {when}; {args.slots} slots × {SLOT_CONTEXT} tokens each) …",
        file=sys.stderr,
        flush=True,
    )
    router = Router(chosen, lambda alias: serve_model(alias, args.slots))
    if not args.on_demand:
        for alias in chosen:
            router.load(alias)
    base_url = router.start(args.port)
    print(base_url, flush=True)
    print("ready; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    router.stop()  # the servers' destructors stop llama.cpp's loops and free the models
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _wait(base_url: str) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if answers(base_url, timeout=1.0):
            return True
        time.sleep(0.2)
    return False


def _log_tail(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_LINES_SHOWN:]
    return "\n".join(f"  {line}" for line in lines)


@contextmanager
def ensure_running(base_url: str) -> Iterator[str]:
    """Yield the base_url of a running local server: ``base_url`` if it answers, else a child started for us."""
    if answers(base_url):
        yield base_url
        return
    log = cache_dir() / "serve-local.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")  # this start's lines only, so the error below shows them and nothing older
    with log.open("ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "harness.testing.local", "--port", "0", "--on-demand"],
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()  # the child prints its base_url once it answers
        if not line.startswith("http"):
            child.wait(timeout=30)
            raise LocalServerError(f"the local server did not start ({log}):\n{_log_tail(log)}")
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
