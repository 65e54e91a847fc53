"""A tiny stand-in for a loaded model (``.predict`` and ``.model_id``), importable by test subprocesses."""
from __future__ import annotations

import time
import zlib

from disinfo_clf.prediction import Evidence, Prediction

NARRATIVES = {"nato": ("nato-threat", "NATO threatens Russia"), "nazi": ("ukraine-nazi", "Ukraine is run by Nazis")}


class FakeModel:
    """Deterministic keyword "model"; sleeps ``delay`` seconds per call and raises on texts containing ``fail_on``."""

    def __init__(self, model_id: str = "fake-model@1", delay: float = 0.0, fail_on: str | None = None) -> None:
        self.model_id, self.delay, self.fail_on = model_id, delay, fail_on
        self.calls: list[int] = []

    def predict(self, texts: list[str], batch_size: int = 32, show_progress_bar: bool | None = False) -> list[Prediction]:
        self.calls.append(len(texts))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and any(self.fail_on in text for text in texts):
            raise RuntimeError(f"cannot score a text containing {self.fail_on!r}")
        return [self._one(text) for text in texts]

    @staticmethod
    def _one(text: str) -> Prediction:
        lower = text.lower()
        key = next((k for k in NARRATIVES if k in lower), None)
        narrative, name = NARRATIVES[key] if key else ("none", "No known narrative")
        score = (zlib.crc32(text.encode("utf-8")) % 1000) / 1000
        first_line = text.split("\n")[0]
        return Prediction(
            narrative=narrative, name=name, score=score, scores={narrative: score},
            narratives=[narrative] if key else [], role="debunk" if "false" in lower else "claim",
            role_score=0.75, evidence=Evidence(text=text[:80], start=0, end=min(80, len(text))) if key else None,
            language="en" if first_line.isascii() else None)
