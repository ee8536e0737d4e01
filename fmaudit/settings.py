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
