"""Strategies: ways of spending a test-time compute budget on a Problem."""

from oomlab.strategies.base import STRATEGIES, Attempt, Draw, DrawStrategy, Strategy, create_strategy

__all__ = ["STRATEGIES", "Attempt", "Draw", "DrawStrategy", "Strategy", "create_strategy"]
