"""`python -m dane_hook`: the same as the `dane-hook` console script."""

from dane_hook.cli import run

if __name__ == "__main__":  # not when a worker process imports the main module
    run()
