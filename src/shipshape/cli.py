"""Command-line entry point. The commands arrive with the CLI issue; until then it only reports its version."""

from __future__ import annotations

import argparse
import sys

from shipshape import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shipshape", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shipshape {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
