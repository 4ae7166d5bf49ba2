"""`python -m oomlab`: the same as the `oomlab` command."""

from oomlab.cli import main

main()
