"""`promptvcr scan`: API keys, bearer tokens, org and project ids, and git-tracked ``.env`` files, as ``file:line``.

By default it reads what git would commit (tracked files and new files git does not ignore) plus ``cassettes/`` and
``reports/`` even where they are ignored, since those are where a recording leaks. A line carrying ``ALLOW_MARKER``
is skipped: that is how a test's planted fake key or a documented example stays in the tree.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import PromptVCRError
from ..record._secrets import PATTERNS, looks_real, mask

ALLOW_MARKER = "promptvcr: allow-secret"
ALWAYS_SCANNED = ("cassettes", "reports")
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"})
# Committed templates of a .env file are expected; their contents are still scanned like any file.
ENV_TEMPLATES = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist"})


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    kind: str
    shown: str  # the secret masked (see ``secrets.mask``), or a hint for a whole-file finding

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} ({self.shown})"


def git_root(start: Path) -> Path | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out.stdout.strip())


def _git_files(root: Path, *flags: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", *flags], cwd=root, capture_output=True, check=True)
    return [root / name for name in out.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):  # does not follow links: reports/latest is seen once
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            yield Path(dirpath) / name


def files_to_scan(root: Path, paths: list[Path], in_git: bool) -> list[Path]:
    """The explicit ``paths`` (folders walked), else the tree as described in the module docstring."""
    chosen: list[Path] = []
    for path in paths:
        chosen.extend(_walk(path) if path.is_dir() else [path])
    if not paths:
        chosen = _git_files(root, "--cached", "--others", "--exclude-standard") if in_git else list(_walk(root))
        for folder in ALWAYS_SCANNED:
            chosen.extend(_walk(root / folder))
    unique = {p.resolve(): p for p in chosen if not p.is_symlink() and p.is_file()}
    # judged below the root only: a checkout that itself lives in a folder named `venv` is still scanned
    return sorted(
        p
        for p in unique.values()
        if not SKIP_DIRS.intersection(p.relative_to(root).parts if p.is_relative_to(root) else ())
    )


def is_env_file(path: Path) -> bool:
    return (path.name == ".env" or path.name.startswith(".env.")) and path.name not in ENV_TEMPLATES


def scan_text(path: Path, text: str) -> Iterator[Finding]:
    for number, line in enumerate(text.splitlines(), 1):
        if ALLOW_MARKER in line:
            continue
        taken: list[tuple[int, int]] = []  # "Bearer sk-…" is one secret, reported once, as the key
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(line):
                start, end = match.span()
                if not looks_real(match["token"]) or any(s < end and start < e for s, e in taken):
                    continue
                taken.append((start, end))
                # the word "Bearer" tells nothing about which token it is; a key's prefix does
                yield Finding(path, number, kind, mask(match["token"] if kind == "bearer-token" else match[0]))


def _read_text(path: Path) -> str | None:
    """The file as text, or None for a binary file (a NUL byte early on) or one that can't be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


def scan(paths: Iterable[Path] = (), cwd: Path | None = None) -> tuple[list[Finding], int]:
    """Findings (shown relative to ``cwd``) and how many files were read."""
    here = (cwd or Path.cwd()).resolve()
    root = git_root(here)
    tracked = {p.resolve() for p in _git_files(root, "--cached")} if root else set()
    files = files_to_scan(root or here, [here / p for p in paths], root is not None)
    findings: list[Finding] = []
    read = 0
    for path in files:
        shown = Path(os.path.relpath(path, here))
        if path.resolve() in tracked and is_env_file(path):
            findings.append(Finding(shown, 1, "env-file", f"tracked by git: `git rm --cached {shown}`"))
        text = _read_text(path)
        if text is not None:
            read += 1
            findings.extend(scan_text(shown, text))
    return findings, read


def main(paths: list[str]) -> int:
    missing = [p for p in paths if not Path(p).exists()]
    if missing:  # a mistyped path must not pass as "clean"
        raise PromptVCRError(f"scan: no such file or folder: {', '.join(missing)}")
    findings, read = scan(Path(p) for p in paths)
    for finding in findings:
        print(finding)
    if findings:
        files = len({f.path for f in findings})
        print(
            f"scan: {len(findings)} possible secret(s) in {files} file(s): remove them (and rotate a real key), "
            f"or mark a deliberate fake with `{ALLOW_MARKER}` on its line"
        )
        return 1
    print(f"scan: clean ({read} files)")
    return 0
