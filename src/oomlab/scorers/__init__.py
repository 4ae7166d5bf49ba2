"""Scorers: turn a candidate into a number; each says whether it reads the reference (an oracle)."""

from oomlab.scorers.base import SCORERS, Candidate, Scorer, create_scorer

__all__ = ["SCORERS", "Candidate", "Scorer", "create_scorer"]
