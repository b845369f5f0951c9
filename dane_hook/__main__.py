"""`python -m dane_hook`: the same as the `dane-hook` console script."""

from dane_hook.cli import run

run()
