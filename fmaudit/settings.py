"""Base classes of every policy section's settings.

Every settings model forbids unknown keys, so a typo in a policy is an error naming the field, not a
setting silently ignored. Data stages subclass :class:`StageSettings`; model stages, audits and scorers
subclass :class:`Strict` through their own contracts.
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A pydantic model that rejects unknown fields."""

    model_config = ConfigDict(extra="forbid")


class StageSettings(Strict):
    """Settings every data stage accepts; a stage subclasses this with its own fields."""

    max_drop_fraction: Optional[float] = Field(
        None, ge=0, le=1,
        description="Check: fail when this stage drops more than this fraction of the documents it sees "
                    "(a filter that suddenly removes most of a corpus is usually a bug). null: no check.",
    )


def named_paths(settings: BaseModel, prefix: str = "") -> list[tuple[str, "Path"]]:
    """``(dotted field, path)`` of every path-typed setting that is set, nested settings included: what a
    preflight checks exists before any work."""
    from pathlib import Path

    out = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, Path):
            out.append((prefix + name, value))
        elif isinstance(value, BaseModel):
            out += named_paths(value, f"{prefix}{name}.")
    return out


def check_paths(settings: BaseModel, owner: str, skip: tuple[str, ...] = ()) -> None:
    """InputError naming the first path-typed setting (not in ``skip``) that names no file or folder."""
    from fmaudit.errors import InputError

    for field, path in named_paths(settings):
        if field not in skip and not path.exists():
            raise InputError(f"{path}: no such file or folder ({owner}, setting {field})")
