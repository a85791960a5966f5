"""What every stage reports about itself: did a trained model or a baseline do the work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ml.cards import ModelCard


@dataclass(frozen=True)
class StageSource:
    """``kind`` is ``"model"`` or ``"baseline"``; ``name`` the card's name or the baseline's id;
    ``detail`` the card summary or the baseline's parameters."""

    kind: Literal["model", "baseline"]
    name: str
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def model(cls, card: ModelCard) -> StageSource:
        return cls("model", card.name, card.summary())

    @classmethod
    def baseline(cls, name: str, **detail: Any) -> StageSource:
        return cls("baseline", name, detail)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}
