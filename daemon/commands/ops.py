"""Operate a running daemon through its local API (SPEC §7):

    tradingd status|positions [--profile P] [--json]
    tradingd halt|flatten --reason R
    tradingd resume
    tradingd ack UNDERLYING

The daemon is found through its state dir: a running daemon writes the URL it is bound to
(`<state_dir>/api-url-<profile>`, whatever `--api-port` it was started with) and removes it
when it stops. Without `--profile` (or $TRADINGD_PROFILE) the profile is the only one running.
Without that file the profile's configured `daemon.api.host/port`; `--url` overrides all. Tokens come from
TRADINGD_API_TOKEN / TRADINGD_ADMIN_TOKEN, the configured token files, or the state
dir. A daemon that is not running or refuses is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import socket
import urllib.error
import urllib.request
from typing import Any

from config.loader import available_profiles as profile_names, load_settings
from config.models import Settings
from daemon.auth import TokenError, api_url_file, load_tokens
from daemon.cli import UsageError
from daemon.control import STATUS_KEYS
from daemon.format import present_status

DEFAULT_TIMEOUT_S = 15.0
URL_PROFILE = "0dte"  # whose token files `--url` uses when no profile is named or running
POSITION_COLUMNS = ("position_id", "underlying", "right", "strike", "expiry", "contracts", "entry_price", "mark",
                    "unrealized_pnl", "unrealized_pct")


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=None,
                        help="profile of the running daemon (default: $TRADINGD_PROFILE, else the only one running)")
    common.add_argument("--url", help="the daemon's API, e.g. http://127.0.0.1:8740 (default: from the profile)")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for an answer")
    common.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("status", parents=[common], help="state, breaker, P&L and connections of a running daemon")
    p.set_defaults(func=run_status)
    p = sub.add_parser("positions", parents=[common], help="open positions of a running daemon")
    p.set_defaults(func=run_positions)
    p = sub.add_parser("halt", parents=[common], help="latch HALTED: no entries until resume")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.set_defaults(func=run_halt)
    p = sub.add_parser("resume", parents=[common], help="leave HALTED")
    p.set_defaults(func=run_resume)
    p = sub.add_parser("flatten", parents=[common], help="close every open position now")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.set_defaults(func=run_flatten)
    p = sub.add_parser("ack", parents=[common], help="acknowledge an underlying blocked for unknown broker positions")
    p.add_argument("underlying", help="symbol, e.g. SPY")
    p.set_defaults(func=run_ack)


# ------------------------------------------------------------------ commands


def run_status(args: argparse.Namespace) -> int:
    data = _call(args, "GET", "/v1/status", admin=False)
    _print(args, data, _status_lines)
    return 0


def run_positions(args: argparse.Namespace) -> int:
    data = _call(args, "GET", "/v1/positions", admin=False)
    _print(args, data, _position_lines)
    return 0


def run_halt(args: argparse.Namespace) -> int:
    return _operator(args, "/v1/halt", {"reason": args.reason})


def run_resume(args: argparse.Namespace) -> int:
    return _operator(args, "/v1/resume", {})


def run_flatten(args: argparse.Namespace) -> int:
    return _operator(args, "/v1/flatten", {"reason": args.reason})


def run_ack(args: argparse.Namespace) -> int:
    return _operator(args, "/v1/acknowledge", {"underlying": args.underlying})


def _operator(args: argparse.Namespace, path: str, body: dict[str, Any]) -> int:
    data = _call(args, "POST", path, admin=True, body={**body, "actor": _actor()})
    _print(args, data, lambda d: [_result_line(path.rsplit("/", 1)[-1], d)])
    return 0


# ------------------------------------------------------------------ transport


def _call(args: argparse.Namespace, method: str, path: str, *, admin: bool,
          body: dict[str, Any] | None = None) -> Any:
    settings = load_settings(_profile(args))
    base = (args.url or _daemon_url(settings)).rstrip("/")
    token = _token(settings, admin)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310 (loopback URL)
            return _decode(response.read(), base)
    except urllib.error.HTTPError as exc:
        answer = _decode_error(exc.read())
        code = str(answer.get("reason") or f"http_{exc.code}")
        message = answer.get("message") or exc.reason
        if token is None:  # asked without one so that "not running" is told first
            raise UsageError(_no_token_message(settings, admin), "token_missing") from None
        raise UsageError(f"daemon at {base} refused ({exc.code} {code}): {message}", code) from None
    except urllib.error.URLError as exc:
        raise UsageError(f"daemon not running: no answer at {base} ({_why(exc.reason)})", "daemon_not_running") from None
    except (TimeoutError, socket.timeout):
        raise UsageError(f"daemon at {base} did not answer within {args.timeout:g} s", "daemon_timeout") from None
    except (ConnectionError, OSError) as exc:
        raise UsageError(f"daemon not running: no answer at {base} ({_why(exc)})", "daemon_not_running") from None


def _profile(args: argparse.Namespace) -> str:
    """--profile, else $TRADINGD_PROFILE, else the one profile whose daemon answers."""
    chosen = args.profile or os.environ.get("TRADINGD_PROFILE")
    if chosen:
        return chosen
    running = running_profiles()
    if len(running) == 1:
        return running[0]
    if args.url:  # the address is given; the profile only says where the tokens are
        return URL_PROFILE
    if not running:
        looked = ", ".join(str(_url_file(name)) for name in profile_names())
        raise UsageError(f"daemon not running: no daemon answers at the URL in {looked}; "
                         "give --profile or --url", "daemon_not_running")
    raise UsageError(f"several daemons are running ({', '.join(running)}): give --profile", "ambiguous_profile")


def running_profiles() -> list[str]:
    """Profiles whose state dir holds the URL of a daemon that answers /healthz now."""
    found = []
    for name in profile_names():
        try:
            settings = load_settings(name)
            url = api_url_file(settings).read_text().strip()
        except Exception:  # noqa: BLE001 - a profile that does not load or never ran is not running
            continue
        if url and _answers(url):
            found.append(name)
    return found


def _url_file(profile: str) -> object:
    try:
        return api_url_file(load_settings(profile))
    except Exception:  # noqa: BLE001 - only for the message
        return f"api-url-{profile}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=2.0):  # noqa: S310 (loopback URL)
            return True
    except urllib.error.HTTPError:
        return True  # it answered: a daemon, even if unhappy
    except (OSError, ValueError):
        return False


def _daemon_url(settings: Settings) -> str:
    """The URL the running daemon wrote to the state dir (its real port), else the configured one."""
    api = settings.daemon.api
    path = api_url_file(settings)
    try:
        written = path.read_text().strip()
    except OSError:
        written = ""
    if written:
        return written
    host = f"[{api.host}]" if ":" in api.host else api.host
    if api.port:
        return f"http://{host}:{api.port}"
    raise UsageError(f"daemon not running: its API port is 0 and {path} does not exist (give --url)",
                     "daemon_not_running")


def _token(settings: Settings, admin: bool) -> str | None:
    try:
        tokens = load_tokens(settings)
    except TokenError as exc:
        raise UsageError(str(exc), exc.code) from None
    return tokens.admin if admin else (tokens.api or tokens.admin)


def _no_token_message(settings: Settings, admin: bool) -> str:
    which = "TRADINGD_ADMIN_TOKEN" if admin else "TRADINGD_API_TOKEN"
    return (f"no {'admin' if admin else 'API'} token: set {which} or run where the daemon's "
            f"state dir ({settings.daemon.state_dir}) is readable")


def _decode(raw: bytes, base: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise UsageError(f"the answer from {base} is not JSON (is it tradingd?)", "bad_answer") from None


def _decode_error(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _why(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    return str(getattr(reason, "strerror", None) or reason)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in a container
        user = str(os.getuid())
    return "cli:" + (re.sub(r"[^A-Za-z0-9_.@+-]", "_", user)[:60] or "unknown")


# ------------------------------------------------------------------ output


def _print(args: argparse.Namespace, data: Any, human: Any) -> None:
    data = _at_units(data)
    if args.json:
        print(json.dumps(data, indent=2))
        return
    for line in human(data):
        print(line)


def _at_units(data: Any) -> Any:
    """Status at its units even from a daemon that answers exact decimals (rendering is idempotent
    there; positions are not re-rendered: their percentages already are percentages)."""
    if isinstance(data, dict) and "trading_state" in data and "breaker_level" in data:
        return present_status(data)
    return data


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _status_lines(data: dict[str, Any]) -> list[str]:
    keys = [k for k in STATUS_KEYS if k in data] + sorted(k for k in data if k not in STATUS_KEYS)
    width = max((len(k) for k in keys), default=0)
    return [f"{k.ljust(width)}  {_text(data[k])}" for k in keys]


def _position_lines(data: dict[str, Any]) -> list[str]:
    positions = data.get("positions") or []
    if not positions:
        return ["no open positions"]
    columns = [c for c in POSITION_COLUMNS if any(c in p for p in positions)]
    rows = [[_text(p.get(c)) + ("%" if c == "unrealized_pct" and p.get(c) is not None else "") for c in columns]
            for p in positions]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(f"{len(positions)} open position{'s' if len(positions) != 1 else ''}")
    return lines


def _result_line(action: str, data: dict[str, Any]) -> str:
    rest = " ".join(f"{k}={_text(v)}" for k, v in data.items() if k != "ok")
    return f"{action}: ok" + (f" ({rest})" if rest else "")
