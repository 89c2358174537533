"""``python -m hogo.cli``."""

from hogo.cli.main import main

main()
