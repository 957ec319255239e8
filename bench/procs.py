"""A whole process timed from outside, the way a user's shell sees it: wall time, CPU time and peak RSS of the child.

Shared by the benchmarks that time a fresh ``python -m pytest`` (start-up and the 100k-row replay).

The children run as a user's do, with their bytecode cached (``environment``): an environment that sets
``PYTHONDONTWRITEBYTECODE`` (this machine's does) would otherwise compile every harness module from source at every
start, a cost no user with a writable ``__pycache__`` pays.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    wall: float
    cpu: float  # user + system of the child (its threads included)
    rss_mb: float  # peak resident set size
    stdout: str
    stderr: str


def environment(tmp: Path, bytecode: bool = True) -> dict[str, str]:
    """This process's environment for a child; with ``bytecode``, compiled modules kept in a throw-away
    ``PYTHONPYCACHEPREFIX`` under ``tmp`` (no source tree gets a ``__pycache__``)."""
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> Proc:
    """Run ``cmd`` to its end; its own resource use (os.wait4: this child's, not that of any other)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # reaped here, not by Popen: so its rusage is read
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    code = child.returncode
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {code} in {cwd}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return Proc(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout, stderr)


def best(rounds: list[Proc]) -> Proc:
    """The round with the least CPU time: the one neighbours disturbed least (the machine is shared)."""
    return min(rounds, key=lambda p: p.cpu)
