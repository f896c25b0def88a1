"""`tradingd config check --profile P [--json]`: validate and print the effective configuration."""

from __future__ import annotations

import argparse
import json
import sys

from config.loader import ConfigError, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    cfg = sub.add_parser("config", help="configuration commands")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND", parser_class=type(cfg))
    check = cfg_sub.add_parser("check", help="validate and print the effective configuration of a profile")
    check.add_argument("--profile", required=True, help="profile name (0dte, 7dte) or a path to a TOML file")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.profile)
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"error": "invalid configuration", "code": "config_invalid",
                              "problems": [{"key": k, "message": m} for k, m in exc.problems]}))
        for key, message in exc.problems:
            print(f"tradingd: config error: {key}: {message}", file=sys.stderr)
        return 2
    data = settings.model_dump(mode="json")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"# effective configuration of profile {settings.profile.name} (valid)")
        _print_tree(data)
    return 0


def _print_tree(node: object, prefix: str = "") -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                _print_tree(value, path)
            else:
                print(f"{path} = {json.dumps(value)}")
    else:
        print(f"{prefix} = {json.dumps(node)}")
