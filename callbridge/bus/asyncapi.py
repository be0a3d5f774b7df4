"""Generates docs/asyncapi.yaml (AsyncAPI 3.0) from the code: ``python -m callbridge.bus.asyncapi``.

Event payload schemas come from the domain event dataclasses (pydantic ``TypeAdapter``), command
schemas from the command models, state schemas from the state models — the same classes the daemon
uses, so ``tests/bus/test_bus_asyncapi.py`` can demand that the checked-in document equals the output.
Every event type gets a deterministic example envelope, built by the real envelope code.
"""

from __future__ import annotations

import importlib
import io
import sys
import typing
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter
from ruamel.yaml import YAML

from callbridge.bus.commands import VERBS
from callbridge.bus.envelope import ENVELOPE_SCHEMA, TYPE_PREFIX, build
from callbridge.bus.state import STATE_MODELS
from callbridge.domain import EVENT_TYPES, DomainEvent

#: Modules that define the events callbridge publishes (imported if present).
EVENT_MODULES = (
    "callbridge.calls.events",
    "callbridge.engine.events",
    "callbridge.bus.events",
    "callbridge.store.events",
    "callbridge.store.feedback",
    "callbridge.centres.events",
)
REF = "#/components/schemas/{model}"
EXAMPLE_TS = 1_790_000_000.0
EXAMPLE_ID = "01953c4e-5a00-7000-8000-000000000001"


def published_event_types() -> dict[str, type[DomainEvent]]:
    """Every event type the daemon can publish (test-only types outside ``callbridge`` excluded)."""
    for name in EVENT_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    return {t: c for t, c in sorted(EVENT_TYPES.items()) if c.__module__.startswith("callbridge.")}


def message_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace("_", ".").split("."))


def _hoist(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    return schema


def data_schema(cls: type[DomainEvent], schemas: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of ``event.data()``: the dataclass fields without ``ts`` (the envelope has the time)."""
    schema = _hoist(TypeAdapter(cls).json_schema(mode="serialization", ref_template=REF), schemas)
    schema.get("properties", {}).pop("ts", None)
    schema["required"] = [r for r in schema.get("required", []) if r != "ts"]
    if not schema["required"]:
        del schema["required"]
    schema["description"] = cls.DOC or (cls.__doc__ or "").strip()
    return schema


def _sample(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:
    """A value that satisfies ``schema`` (enough for examples: first choice of every alternative)."""
    if "$ref" in schema:
        return _sample(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas)
    for key in ("const", "enum", "default"):
        if key in schema:
            return schema[key][0] if key == "enum" else schema[key]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _sample(options[0], schemas)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _sample(props[name], schemas) for name in schema.get("required", [])}
    samples: dict[str, Any] = {"string": "example", "integer": 1, "number": 1.5, "boolean": True, "null": None,
                               "array": []}  # fmt: skip
    return samples.get(str(kind), "example")


def example_event(cls: type[DomainEvent], schemas: dict[str, Any]) -> DomainEvent:
    full = _hoist(TypeAdapter(cls).json_schema(ref_template=REF), schemas)
    values = _sample({**full, "required": list(full.get("properties", {}))}, schemas)
    values.update(ts=EXAMPLE_TS, call_id="1790000000.17", hotline="12345")
    hints = typing.get_type_hints(cls)
    if "to_hotline" in hints and "to_hotline" in values:
        values["to_hotline"] = "110"
    event: DomainEvent = TypeAdapter(cls).validate_python(values)
    return event


def _summary(cls: type[DomainEvent]) -> str:
    text = cls.DOC or (cls.__doc__ or "").strip()
    return text.splitlines()[0] if text else cls.TYPE


def _model_schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    return _hoist(model.model_json_schema(ref_template=REF), schemas)


def _param(description: str) -> dict[str, Any]:
    return {"description": description}


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    event_refs: dict[str, Any] = {}
    for event_type, cls in published_event_types().items():
        name = message_name(event_type)
        example = build(example_event(cls, schemas), site="example", seq=1, event_id=EXAMPLE_ID)
        messages[name] = {
            "name": event_type,
            "title": f"{TYPE_PREFIX}{event_type}",
            "summary": _summary(cls),
            "contentType": "application/cloudevents+json",
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {
                        "type": "object",
                        "properties": {"type": {"const": TYPE_PREFIX + event_type}, "data": data_schema(cls, schemas)},
                    },
                ]
            },
            "examples": [{"name": "example", "payload": orjson.loads(example.payload)}],
        }
        event_refs[name] = {"$ref": f"#/components/messages/{name}"}
    schemas["CloudEvent"] = ENVELOPE_SCHEMA

    channels: dict[str, Any] = {
        "events": {
            "address": "callbridge/{site}/events/{hotline}/{eventType}",
            "description": (
                "Every domain event, once per hotline that must see it (the destination of a transfer "
                "too). eventType is the type with dots as levels (transfer/requested); hotline `_` when "
                "none. QoS 1, not retained; de-duplicate on the envelope id."
            ),
            "parameters": {
                "site": _param("Site name from the settings."),
                "hotline": _param("Hotline number (12345, 110, 119, 120, 122 ...) or `_`."),
                "eventType": _param("Event type, dots replaced by `/`."),
            },
            "messages": event_refs,
        },
        "call": {
            "address": "callbridge/{site}/calls/{callId}",
            "description": "Every event of one call (same envelope and id as on the events channel).",
            "parameters": {"site": _param("Site name."), "callId": _param("Call id (Asterisk Linkedid).")},
            "messages": dict(event_refs),
        },
        "status": {
            "address": "callbridge/{site}/status",
            "description": "Retained `online` / `offline` (text/plain); `offline` is the last will.",
            "parameters": {"site": _param("Site name.")},
            "messages": {"Status": {"$ref": "#/components/messages/Status"}},
        },
        "reply": {
            "address": "callbridge/{site}/reply/{replyTo}",
            "description": "Replies for MQTT 3.1.1 clients (MQTT 5 clients get them on their response topic).",
            "parameters": {"site": _param("Site name."), "replyTo": _param("`reply_to` of the command or `default`.")},
            "messages": {"Reply": {"$ref": "#/components/messages/Reply"}},
        },
    }
    messages["Status"] = {
        "contentType": "text/plain",
        "payload": {"type": "string", "enum": ["online", "offline"]},
    }
    messages["Reply"] = {"payload": {"$ref": "#/components/schemas/Reply"}}
    schemas["Reply"] = {
        "type": "object",
        "required": ["ok", "verb"],
        "properties": {
            "ok": {"type": "boolean"},
            "verb": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["done", "accepted", "executing", "failed", "refused"],
                "description": (
                    "done / refused: the only reply. accepted (final false): authorised, AMI actions being sent "
                    "(transfer, three_way, complete, cancel, leave); a second reply on the same topic and "
                    "correlation data follows: executing (ok true: the PBX took the actions; events tell the "
                    "rest) or failed (ok false, error.code ami_unavailable, ami_failed, ami_outcome_unknown, "
                    "outcome_timeout, ...)."
                ),
            },
            "final": {"type": "boolean", "description": "false only on an accepted reply: another one follows"},
            "result": {"type": "object"},
            "correlation_id": {"type": "string"},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["bad_json", "invalid", "unknown_verb", "unauthorised",
                                                            "bad_signature", "not_on_this_pbx", "internal_error",
                                                            "ami_unavailable", "ami_failed", "ami_outcome_unknown",
                                                            "outcome_timeout"]},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    }
    operations: dict[str, Any] = {
        "publishEvents": {"action": "send", "channel": {"$ref": "#/channels/events"}},
        "publishCallEvents": {"action": "send", "channel": {"$ref": "#/channels/call"}},
        "publishStatus": {"action": "send", "channel": {"$ref": "#/channels/status"}},
    }
    for suffix, model in STATE_MODELS.items():
        key = "state" + "".join(p.capitalize() for p in suffix.split("/")[0].split("_"))
        params = {p.strip("{}"): _param(p.strip("{}")) for p in suffix.split("/") if p.startswith("{")}
        channels[key] = {
            "address": "callbridge/{site}/state/" + suffix,
            "description": f"Retained {model.__name__} (coalesced: only the latest is kept).",
            "parameters": {"site": _param("Site name."), **params},
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        }
        messages[model.__name__] = {"payload": _model_schema(model, schemas)}
        operations["publish" + key[0].upper() + key[1:]] = {"action": "send", "channel": {"$ref": f"#/channels/{key}"}}
    for verb, cmd_model in VERBS.items():
        key = "cmd" + "".join(p.capitalize() for p in verb.split("_"))
        name = cmd_model.__name__
        channels[key] = {
            "address": f"callbridge/{{site}}/cmd/{verb}",
            "description": (cmd_model.__doc__ or "").strip(),
            "parameters": {"site": _param("Site name.")},
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        messages[name] = {"payload": _model_schema(cmd_model, schemas)}
        operations["receive" + key[0].upper() + key[1:]] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "reply": {"channel": {"$ref": "#/channels/reply"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "callbridge MQTT interface",
            "version": "1.0.0",
            "description": (
                "Events out (CloudEvents 1.0, structured JSON, QoS 1, at-least-once with stable ids), "
                "retained state, commands in (MQTT 5 request/response). Generated by "
                "`python -m callbridge.bus.asyncapi`; see docs/mqtt.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {"host": "localhost:1883", "protocol": "mqtt", "protocolVersion": "5.0"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items())), "messages": messages},
    }


def render() -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    # A JSON round trip unshares nested objects, so the YAML has no anchors/aliases.
    yaml.dump(orjson.loads(orjson.dumps(document())), out)
    return out.getvalue()


if __name__ == "__main__":
    sys.stdout.write(render())
