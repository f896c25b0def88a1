"""`tradingd` command line. Each command lives in `daemon/commands/<name>.py` exposing
`register(subparsers)`; the parser it adds sets `func(args) -> int`.

Conventions every command keeps: exit 0 when it answered, exit 2 with one line on stderr
(and `{"error": ...}` on stdout under `--json`) for bad input. Never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

import daemon.commands as commands_pkg


class UsageError(Exception):
    """Bad input to a command: reported in one line, exit 2."""

    def __init__(self, message: str, code: str = "bad_input"):
        self.code = code
        super().__init__(message)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 as well; keep its message to one line
        raise UsageError(message, "usage")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tradingd", description="Unattended options-trading daemon for Interactive Brokers.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"daemon.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def version() -> str:
    """The installed distribution's version (pyproject), or "unknown" when run from a bare tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("tradingd")
    except PackageNotFoundError:
        return "unknown"


def report_error(message: str, as_json: bool, code: str = "bad_input") -> int:
    if as_json:
        print(json.dumps({"error": message, "code": code}))
    print(f"tradingd: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    as_json = "--json" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "version", False) and not getattr(args, "command", None):
            print(f"tradingd {version()}")
            return 0
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except UsageError as exc:
        return report_error(str(exc), as_json, exc.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tradingd ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: one line, not a traceback
        from config.loader import ConfigError

        if isinstance(exc, ConfigError):
            return report_error(str(exc), as_json, "config_invalid")
        return report_error(f"{type(exc).__name__}: {exc}", as_json, "internal_error")


if __name__ == "__main__":
    sys.exit(main())
