"""What a prediction returns: typed, frozen results that turn into plain dicts and JSON."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .matching.index import CaseMatch

__all__ = ["Evidence", "Prediction"]


@dataclass(frozen=True)
class Evidence:
    """The part of the input that drove the top narrative: ``text[start:end]`` of the input."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Prediction:
    """What the model says about one text."""

    narrative: str
    """Id of the most likely narrative."""
    name: str
    """Human-readable name of that narrative."""
    score: float
    """Calibrated probability of that narrative."""
    scores: dict[str, float]
    """Narrative id → probability, highest first (the ``top_k`` highest when asked)."""
    narratives: list[str]
    """Ids whose probability is above their tuned threshold; may be empty."""
    role: str
    """``"claim"`` when the text states the narrative, ``"debunk"`` when it refutes it."""
    role_score: float
    """Probability of that role."""
    evidence: Evidence | None
    """The sentence window that drove the top narrative, with offsets into the input."""
    language: str | None
    """ISO 639-1 code of the text's language (offline detector), ``None`` when unsure."""
    relevance: float | None = None
    """Calibrated probability that the text engages a known narrative at all (states or debunks
    it); ``None`` when the model has no relevance part."""
    relevant: bool | None = None
    """Whether ``relevance`` reaches its tuned threshold; when it does not, ``narratives`` is empty
    (the text pushes no known narrative). ``None`` when the model has no relevance part."""
    matches: list[CaseMatch] = field(default_factory=list)
    """The closest catalogued cases, best first (empty when the model has no relevance part)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        out = dataclasses.asdict(self)
        out["matches"] = [m.to_dict() for m in self.matches]
        return out

    def __str__(self) -> str:
        flagged = ", ".join(self.narratives) if self.narratives else "none above threshold"
        lines = []
        if self.relevant is False:
            lines.append(f"no known narrative (relevance {self.relevance:.0%}); the classifier's best guess:")
            flagged = "none (no known narrative)"
        elif self.relevance is not None:
            lines.append(f"relevance: {self.relevance:.0%} (engages a known narrative)")
        lines += [
            f"narrative: {self.name} ({self.narrative}) — {self.score:.0%}",
            f"role:      {self.role} ({self.role_score:.0%})",
            f"flagged:   {flagged}",
            f"language:  {self.language or 'unknown'}",
        ]
        if self.evidence is not None:
            lines.append(f"evidence:  [{self.evidence.start}:{self.evidence.end}] {self.evidence.text}")
        runners = list(self.scores.items())[1:4]
        if runners:
            lines.append("also:      " + ", ".join(f"{k} {v:.0%}" for k, v in runners))
        for i, m in enumerate(self.matches):
            lines.append(f"{'cases:' if i == 0 else '':<11}{m.score:.2f} {m.date or '????-??-??'} {m.title}"
                         + (f" <{m.url}>" if m.url else ""))
        return "\n".join(lines)
