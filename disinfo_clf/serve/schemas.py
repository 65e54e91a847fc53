"""Request and response bodies of the HTTP API (pydantic models; the OpenAPI schema at ``/docs``).

Requests forbid unknown fields, so no request can name a file, a model path or a URL: the server
answers with the model it was started with and the shipped case index, nothing else. Responses are
exactly ``Prediction.to_dict()`` and ``CaseMatch.to_dict()``: their schema is read off those
dataclasses, so a field the library adds reaches the API and its documentation by itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from ..matching.index import CaseMatch
from ..results import Prediction


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each limit is stated in the error that enforces it."""

    max_texts: int = 256
    """Texts in one request."""
    max_text_chars: int = 100_000
    """Characters in one text (a long news article has about 10,000)."""
    max_total_chars: int = 1_000_000
    """Characters in all the texts of one request together."""
    max_top_k: int = 100
    """Largest ``top_k`` of ``/v1/predict``."""
    max_k: int = 50
    """Largest ``k`` of ``/v1/match``."""


class TextsRequest(BaseModel):
    """One text (``text``) or several (``texts``); exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    text: Optional[StrictStr] = Field(default=None, description="One text to analyse.",
                                      examples=["NATO promised not to expand east and lied."])
    texts: Optional[list[StrictStr]] = Field(default=None, description="Several texts, analysed independently.")

    @model_validator(mode="after")
    def _one_of_text_or_texts(self) -> "TextsRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a list of strings)")
        return self

    def items(self) -> list[str]:
        """The texts of the request, in order."""
        return [self.text] if self.text is not None else list(self.texts or [])


class PredictRequest(TextsRequest):
    """Body of ``POST /v1/predict``."""

    top_k: Optional[int] = Field(default=None, ge=1, strict=True,
                                 description="Keep only the k highest narrative scores (default: all).")


class MatchRequest(TextsRequest):
    """Body of ``POST /v1/match``."""

    k: int = Field(default=5, ge=1, strict=True, description="Cases per text, best first.")


class PredictResponse(BaseModel):
    """One prediction per text, in request order."""

    predictions: list[Prediction]


class MatchResponse(BaseModel):
    """One list of cases per text (best first), in request order."""

    matches: list[list[CaseMatch]]


class NarrativeOut(BaseModel):
    """One narrative of the taxonomy in use."""

    id: str
    name: str
    description: Optional[str] = None


class NarrativesResponse(BaseModel):
    """The narratives the model tells apart, in its score order."""

    model: str
    narratives: list[NarrativeOut]


class Health(BaseModel):
    """Liveness."""

    status: str = "ok"
    model: str
    version: str
    token_required: bool
    """Whether ``/v1/*`` calls need ``Authorization: Bearer TOKEN``."""


class ErrorOut(BaseModel):
    """Every error: a sentence saying what was wrong and how to fix it."""

    error: str
    detail: Any = None


def check_limits(items: list[str], limits: Limits, single: bool = False) -> str | None:
    """The sentence saying which per-request cap ``items`` exceeds (or which text is blank), else ``None``;
    ``single``: the request gave one ``text`` rather than a ``texts`` list."""
    if not items:
        return "texts: the list is empty; give at least one text"
    if len(items) > limits.max_texts:
        return f"texts: {len(items)} texts in one request; at most {limits.max_texts} are allowed, split the request"
    total = 0
    for i, text in enumerate(items):
        field = "text" if single else f"texts[{i}]"
        if not text.strip():
            return f"{field}: the text is blank; every text needs some non-blank characters"
        if len(text) > limits.max_text_chars:
            return (f"{field}: {len(text)} characters; at most {limits.max_text_chars} characters are allowed "
                    "in one text, split it")
        total += len(text)
    if total > limits.max_total_chars:
        return (f"texts: {total} characters in all; at most {limits.max_total_chars} characters are allowed "
                "in one request, split the request")
    return None
