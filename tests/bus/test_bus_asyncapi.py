"""docs/asyncapi.yaml agrees with the code; every publishable event is documented; examples validate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from ruamel.yaml import YAML

from callbridge.bus import asyncapi
from callbridge.bus.commands import VERBS
from callbridge.bus.envelope import build
from callbridge.bus.events import OutboxFull

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(DOC_PATH.read_text(encoding="utf-8"))
    return loaded


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    # refs are document-absolute (#/components/schemas/...): validate with the components at the root
    root = {**schema, "components": doc["components"]}
    cls = jsonschema.validators.validator_for(root, default=jsonschema.Draft202012Validator)
    return cls(root)


def test_checked_in_document_is_what_the_code_generates() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == asyncapi.render(), (
        "docs/asyncapi.yaml is stale: run `python -m callbridge.bus.asyncapi > docs/asyncapi.yaml`"
    )


def test_every_publishable_event_type_is_documented_on_the_event_channels(doc: dict[str, Any]) -> None:
    types = asyncapi.published_event_types()
    assert "outbox.full" in types
    assert not any(t.startswith("test.") for t in types)  # test-only events stay out of the contract
    messages = doc["components"]["messages"]
    documented = {m["name"] for m in messages.values() if "name" in m}
    assert set(types) <= documented
    for event_type in types:
        name = asyncapi.message_name(event_type)
        assert messages[name]["name"] == event_type
        for channel in ("events", "call"):
            assert doc["channels"][channel]["messages"][name] == {"$ref": f"#/components/messages/{name}"}


def test_every_example_validates_against_its_message_schema(doc: dict[str, Any]) -> None:
    checked = 0
    for name, message in doc["components"]["messages"].items():
        for example in message.get("examples", []):
            validator(doc, message["payload"]).validate(example["payload"])
            checked += 1
        assert message.get("examples") or "name" not in message, f"{name} has no example"
    assert checked >= len(asyncapi.published_event_types())


def test_a_real_envelope_validates_and_a_wrong_one_does_not(doc: dict[str, Any]) -> None:
    schema = doc["components"]["messages"]["OutboxFull"]["payload"]
    event = OutboxFull(ts=time.time(), depth=5, max_rows=10, dropped_state=1, dropped_events=2)
    envelope = orjson.loads(build(event, site="lab", seq=9).payload)
    validator(doc, schema).validate(envelope)
    with pytest.raises(jsonschema.ValidationError):
        validator(doc, schema).validate({**envelope, "data": {**envelope["data"], "depth": "five"}})
    with pytest.raises(jsonschema.ValidationError):
        validator(doc, schema).validate({**envelope, "type": "org.callbridge.call.ended"})


def test_every_command_verb_has_a_channel_and_schema(doc: dict[str, Any]) -> None:
    addresses = {c["address"] for c in doc["channels"].values()}
    for verb, model in VERBS.items():
        assert f"callbridge/{{site}}/cmd/{verb}" in addresses
        schema = doc["components"]["messages"][model.__name__]["payload"]
        assert schema["additionalProperties"] is False
    transfer = doc["components"]["messages"]["TransferCommand"]["payload"]
    good = {"call_id": "1.2", "agent": "a1", "to_hotline": "110", "mode": "threeway", "handover": {"plate": "A1"}}
    validator(doc, transfer).validate(good)
    with pytest.raises(jsonschema.ValidationError):
        validator(doc, transfer).validate({**good, "mode": "teleport"})


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    found = refs(doc)
    assert found
    for ref in found:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict)
    assert doc["asyncapi"].startswith("3.")
