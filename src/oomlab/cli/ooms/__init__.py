"""`oomlab ooms`: count the OOMs — counts, projections, two-point rates, trendlines, conversions, measured runs."""

from oomlab.cli.ooms import convert, counting, measured, trends  # noqa: F401  (commands register on import)
from oomlab.cli.ooms.common import app

__all__ = ["app"]
