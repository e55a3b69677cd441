"""The siRNA knowledge files: sequence/safety rules and ranking penalties (``knowledge/sirna-rules.toml``) and
chemical modification patterns (``knowledge/sirna-modifications.toml``), each versioned with its sources."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..knowledge import KNOWLEDGE_DIR


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(path, "file not found", "check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not valid TOML ({exc})", "fix the TOML syntax") from None


@lru_cache(maxsize=4)
def load_sirna_rules(path: str | None = None) -> dict[str, Any]:
    """The rule file (``--rules``) or the shipped ``sirna-rules.toml``."""
    return _load_toml(Path(path) if path else KNOWLEDGE_DIR / "sirna-rules.toml")


@lru_cache(maxsize=4)
def load_patterns(path: str | None = None) -> dict[str, dict[str, Any]]:
    """Modification patterns by name."""
    data = _load_toml(Path(path) if path else KNOWLEDGE_DIR / "sirna-modifications.toml")
    return {d["name"]: d for d in data.get("pattern", [])}
