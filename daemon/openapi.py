"""The API's own OpenAPI 3.1 description, served at `/v1/openapi.json` (Part 8).

Written by hand next to the routes it describes (a dozen routes do not need a framework). The
fuzz test (tests/daemon/test_api_fuzz.py) generates its requests from this document, so a route
added to the API without a line here is not fuzzed; `test_openapi_lists_every_route` fails then.
"""

from __future__ import annotations

from typing import Any

from config.models import Settings
from risk.signal import ACTIONS, DIRECTIONS, FUNDAMENTAL_FIELDS, STRATEGIES

OPENAPI_PATH = "/v1/openapi.json"

_REFUSAL = {
    "type": "object", "required": ["reason", "message"],
    "properties": {"ok": {"type": "boolean"}, "accepted": {"type": "boolean"},
                   "reason": {"type": "string", "pattern": "^[a-z0-9_]+$"}, "message": {"type": "string"}},
}
_ACTOR = {"type": "string", "pattern": "^[A-Za-z0-9_.@:+-]{1,64}$"}


def _refusals(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "refused, with a reason code",
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}}}
            for c in codes}


def _ok(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"200": {"description": description, "content": {media: {"schema": {"type": "object"}}}}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def signal_schema(settings: Settings) -> dict[str, Any]:
    number = {"type": "number"}
    return {
        "type": "object", "additionalProperties": False,
        "required": ["id", "profile", "underlying", "direction", "strategy", "confidence", "created_at"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}$"},
            "profile": {"type": "string", "enum": [settings.profile.name]},
            "underlying": {"type": "string", "enum": list(settings.profile.underlyings)},
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
            "strategy": {"type": "string", "enum": list(STRATEGIES)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "created_at": {"type": "string", "format": "date-time"},
            "ttl_s": {"type": "number", "exclusiveMinimum": 0},
            "action": {"type": "string", "enum": list(ACTIONS)},
            "position_id": {"type": "string"},
            **{name: number for name in FUNDAMENTAL_FIELDS},
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    api_limits = settings.daemon.api.limits
    reason_body = {"type": "object", "required": ["reason"],
                   "properties": {"reason": {"type": "string", "maxLength": 500}, "actor": _ACTOR}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"tradingd ({settings.profile.name})", "version": "1",
                 "description": "Signals in, status out, operator commands. Every refusal names a reason code. "
                                f"Per-token rate limits: {api_limits.signals_per_s}/s (burst {api_limits.signals_burst}), "
                                f"operator routes {api_limits.operator_per_s}/s (burst {api_limits.operator_burst}); "
                                "over them: 429 with Retry-After."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Refusal": _REFUSAL, "Signal": signal_schema(settings)},
        },
        "paths": {
            "/v1/signals": {"post": {
                "operationId": "postSignal", "security": [{"bearer": []}],
                "requestBody": _body({"$ref": "#/components/schemas/Signal"}),
                "responses": {**_ok("accepted: the decision"), **_refusals(400, 401, 408, 409, 422, 429, 503)}}},
            "/v1/status": {"get": {"operationId": "getStatus", "security": [{"bearer": []}],
                                   "responses": {**_ok("the daemon's state"), **_refusals(401, 429)}}},
            "/v1/positions": {"get": {"operationId": "getPositions", "security": [{"bearer": []}],
                                      "responses": {**_ok("open positions"), **_refusals(401, 429)}}},
            "/v1/halt": {"post": {"operationId": "halt", "security": [{"bearer": []}], "x-admin": True,
                                  "requestBody": _body(reason_body),
                                  "responses": {**_ok("halted"), **_refusals(400, 401, 403, 408, 409, 429)}}},
            "/v1/resume": {"post": {"operationId": "resume", "security": [{"bearer": []}], "x-admin": True,
                                    "requestBody": _body({"type": "object", "properties": {"actor": _ACTOR}}, False),
                                    "responses": {**_ok("resumed"), **_refusals(400, 401, 403, 408, 409, 429)}}},
            "/v1/flatten": {"post": {"operationId": "flatten", "security": [{"bearer": []}], "x-admin": True,
                                     "requestBody": _body(reason_body),
                                     "responses": {**_ok("flattening"), **_refusals(400, 401, 403, 408, 409, 429)}}},
            "/v1/acknowledge": {"post": {
                "operationId": "acknowledge", "security": [{"bearer": []}], "x-admin": True,
                "requestBody": _body({"type": "object", "required": ["underlying"],
                                      "properties": {"underlying": {"type": "string"}, "actor": _ACTOR}}),
                "responses": {**_ok("acknowledged"), **_refusals(400, 401, 403, 408, 409, 429)}}},
            "/healthz": {"get": {"operationId": "healthz", "responses": {**_ok("the event loop turns"),
                                                                         **_refusals(503)}}},
            "/metrics": {"get": {"operationId": "metrics",
                                 "responses": _ok("Prometheus text", "text/plain")}},
            OPENAPI_PATH: {"get": {"operationId": "openapi", "responses": _ok("this document")}},
            # The operator page (room ops, daemon/page/): HTML forms for people, not the JSON API.
            "/": {"get": {"operationId": "page", "x-html": True, "responses": _html("the page or the sign-in form")}},
            "/login": {"post": {"operationId": "pageLogin", "x-html": True,
                                "requestBody": _form({"token": {"type": "string"}}),
                                "responses": {"303": {"description": "signed in: back to /"},
                                              **_html("token not recognised", "401")}}},
            "/logout": {"get": {"operationId": "pageLogout", "x-html": True,
                                "responses": {"303": {"description": "signed out: back to /"}}}},
            "/page/{action}": {"post": {
                "operationId": "pageAction", "x-html": True, "parameters": [_ACTION],
                "requestBody": _form({"reason": {"type": "string", "maxLength": 500}}),
                "responses": _html("the confirmation form")}},
            "/page/{action}/confirm": {"post": {
                "operationId": "pageConfirm", "x-html": True, "parameters": [_ACTION],
                "requestBody": _form({"reason": {"type": "string"}, "confirm": {"type": "string"},
                                      "admin_token": {"type": "string"}}),
                "responses": {"303": {"description": "done: back to /"}, **_html("refused", "400")}}},
        },
    }


_ACTION = {"name": "action", "in": "path", "required": True,
           "schema": {"type": "string", "enum": ["halt", "resume", "flatten"]}}


def _html(description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}}


def _form(properties: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": {"type": "object", "properties": properties}}}}
