"""Where answered, suggested and fallback begin: the one place their defaults are written.

Kept free of heavy imports, so the settings can take their defaults from here.
Chosen from the development set with `madoguchi faq evaluate` (see README, "Measurements").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MatchThresholds:
    """Where answered, suggested and fallback begin (combined scores are 0..1)."""

    answer: float = 0.50
    margin: float = 0.08
    suggest: float = 0.425
    max_candidates: int = 5

    def decide(self, scores: list[float]) -> str:
        """The outcome for a ranked list of scores (best first)."""
        if not scores or scores[0] < self.suggest:
            return "fallback"
        runner_up = scores[1] if len(scores) > 1 else 0.0
        if scores[0] >= self.answer and scores[0] - runner_up >= self.margin:
            return "answered"
        return "suggested"
