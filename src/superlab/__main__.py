"""``python -m superlab`` is the ``superlab`` command."""

from superlab.cli import main

main()
