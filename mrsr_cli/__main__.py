"""``python -m mrsr_cli``: the ``mrsr`` command."""

from mrsr_cli.app.cli import run

if __name__ == "__main__":
    run()
