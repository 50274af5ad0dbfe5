"""``python -m mmship``: the same as the ``mmship`` command."""

from mmship.core.cli.app import run

if __name__ == "__main__":
    run()
