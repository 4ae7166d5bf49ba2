"""`oomlab ooms`: count the OOMs — trendlines, projections, unit conversions, measured runs."""

from oomlab.cli.ooms import convert, measured, trends  # noqa: F401  (commands register on import)
from oomlab.cli.ooms.common import app

__all__ = ["app"]
