"""Keys per environment: ``profiles.yaml`` names environments (dev, staging, prod — names are data), each choosing
the key variable and base_url of ``endpoint: openai``.

The profile in force is the one named (``--profile``, or ``PROMPTVCR_PROFILE``, read at the command line's edge and
passed down), else the file's ``default``. Without the file nothing changes: ``endpoint: openai`` uses
OPENAI_API_KEY and api.openai.com.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InputError
from . import _validated as validated

FILE = "profiles.yaml"
ENV = "PROMPTVCR_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    api_key_env: str
    base_url: str | None


def selected(root: Path, name: str | None = None) -> Profile | None:
    """The profile ``name`` (else the file's default) of the project at ``root``; None when it has no profiles file."""
    path = root / FILE
    if not path.is_file():
        if name:
            raise ConfigError(f"profile {name!r} asked for, but {path} does not exist: create it or unset {ENV}")
        return None
    checked = validated.load(path, "profiles.schema.json", root)
    doc = checked.doc
    if checked.problems:
        raise InputError(checked.problems)
    checked.keep()  # a profile the file lacks is the command line's mistake, not the file's
    known = doc.data["profiles"]
    name = name or doc.data.get("default")
    if name is None:
        raise ConfigError(f"{path} has no `default`: choose a profile with --profile or {ENV} ({', '.join(known)})")
    if name not in known:
        raise ConfigError(f"no profile {name!r} in {path} (profiles: {', '.join(known)})")
    raw = known[name]
    return Profile(name, raw["api_key_env"], raw.get("base_url"))
