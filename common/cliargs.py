"""The argument parser every CLI uses, so that a bad flag ends as every other user error does:
one line on stderr naming the flag, exit code 2 (argparse's own error prints the whole usage
first, many lines that bury the one that matters)."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are one line: "<prog>: error: <message>", exit 2.
    Its subparsers are of the same class (argparse's default), so they print one line too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")
