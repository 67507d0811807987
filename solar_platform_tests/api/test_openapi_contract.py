"""The OpenAPI names clients generate code from stay stable: compared with a committed snapshot.

`openapi_contract.json` was taken from the API before it was split into one blueprint module per
tag. It keeps what a generated client depends on: per operation its path, method, operationId,
tags, parameters, response codes with their content schemas and security; what a token changes
(security and a 401 on the operations); and every component schema. Summaries and descriptions
(the handlers' docstrings) are left out: they are documentation, not names.

Nothing may disappear or change. Additions must be listed in `ADDITIONS` (schemas),
`ADDED_OPERATIONS` and `ADDED_TAGS`, so each one is a deliberate, additive change to the contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from solar_platform.api.app import create_app
from solar_platform.settings import Settings

SNAPSHOT = Path(__file__).with_name("openapi_contract.json")

# "Schema.property" or "Schema" for each part added to the contract since the snapshot.
ADDITIONS = {
    "Health.notifications", "NotificationStatus",  # alert notifications' delivery, in health
    # the platform's own alarms and the batch in flight (a slow stream is not a stuck one), in health
    "Health.platform_alerts", "PlatformAlert", "StreamStatus.batch_in_flight", "StreamStatus.batch_running_seconds",
    # what the batch in flight waits for (MariaDB's disk full), and Kafka records retention deleted unread
    "StreamStatus.waiting_for", "StreamStatus.waiting_since", "Health.lost_offsets", "LostOffsets", "LostOffsetsGap",
    # sites: the registry and each site's energy in its own zone
    "Site", "SiteDetail", "SitesPage", "Energy.site_id",
    # yield figures: specific yield and performance ratio
    "Yield", "YieldValue", "YieldUnit",
    # how far the stream's summaries (windows, buckets, latest rows) trail panelData
    "StreamStatus.summaries_waiting_batches", "StreamStatus.summaries_behind_seconds",
}
ADDED_TAGS = {"sites"}
ADDED_OPERATIONS = {
    "GET /api/v1/sites", "GET /api/v1/sites/{site_id}", "GET /api/v1/sites/{site_id}/energy",
    "GET /api/v1/sites/{site_id}/yield", "GET /api/v1/panels/{panel_id}/yield", "GET /api/v1/fleet/yield",
}


def contract(spec: dict[str, Any]) -> dict[str, Any]:
    """The client-facing names of one OpenAPI document (see the module docstring)."""
    operations = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            operations[f"{method.upper()} {path}"] = {
                "operationId": op["operationId"],
                "tags": op.get("tags", []),
                "parameters": op.get("parameters", []),
                "responses": {code: response.get("content", {}) for code, response in op["responses"].items()},
                "security": op.get("security"),
            }
    return {"tags": [tag["name"] for tag in spec.get("tags", [])], "operations": operations}


def documents() -> dict[str, dict[str, Any]]:
    """The API's OpenAPI document without and with a token. Building the app opens no connection."""
    never_connected = create_engine("mysql+pymysql://nobody@127.0.0.1:1/none")
    return {
        variant: create_app(Settings(api_token=token), engine=never_connected, rate_per_second=None).api_doc
        for variant, token in (("open", None), ("token", "a-token"))
    }


def snapshot_of(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The open API's contract and schemas; for the API with a token, what a token changes: each
    operation's security and response codes."""
    with_token = contract(docs["token"])
    return {
        **contract(docs["open"]),
        "with_token": {
            name: {"security": op["security"], "response_codes": sorted(op["responses"])}
            for name, op in with_token["operations"].items()
        },
        "schemas": docs["open"]["components"]["schemas"],
    }


def schema_differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], set[str]]:
    """(what was removed or changed, what was added) between two sets of component schemas."""
    broken, added = [], set()
    for name, schema in new.items():
        if name not in old:
            added.add(name)
            continue
        before = old[name]
        new_props, old_props = schema.get("properties", {}), before.get("properties", {})
        added |= {f"{name}.{prop}" for prop in set(new_props) - set(old_props)}
        for prop, value in old_props.items():
            if new_props.get(prop) != value:
                broken.append(f"{name}.{prop} removed or changed")
        rest = {key: value for key, value in schema.items() if key != "properties"}
        if rest != {key: value for key, value in before.items() if key != "properties"}:
            broken.append(f"{name}: required fields, type or title changed")
    broken += [f"{name} removed" for name in set(old) - set(new)]
    return broken, added


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    return snapshot_of(documents())


def test_operations_tags_and_parameters_are_unchanged(current: dict[str, Any]) -> None:
    snapshot = json.loads(SNAPSHOT.read_text())
    assert [tag for tag in current["tags"] if tag not in ADDED_TAGS] == snapshot["tags"]
    assert set(current["tags"]) - set(snapshot["tags"]) == ADDED_TAGS
    old = {name: op for name, op in current["operations"].items() if name in snapshot["operations"]}
    assert old == snapshot["operations"]
    assert set(current["operations"]) - set(snapshot["operations"]) == ADDED_OPERATIONS
    assert {name: op for name, op in current["with_token"].items() if name in snapshot["with_token"]} \
        == snapshot["with_token"]


def test_schemas_only_grow_by_the_listed_additions(current: dict[str, Any]) -> None:
    broken, added = schema_differences(json.loads(SNAPSHOT.read_text())["schemas"], current["schemas"])
    assert broken == []
    assert added == ADDITIONS


def test_the_comparison_sees_a_renamed_operation_and_a_removed_property() -> None:
    """The check itself: a rename and a removal are caught, an added optional property is reported."""
    spec = json.loads(SNAPSHOT.read_text())
    renamed = json.loads(json.dumps(spec["operations"]))
    renamed["GET /api/v1/health"]["operationId"] = "get_health"
    assert renamed != spec["operations"]
    schemas = json.loads(json.dumps(spec["schemas"]))
    del schemas["Health"]["properties"]["stream"]
    schemas["Panel"]["properties"]["site"] = {"type": "string"}
    broken, added = schema_differences(spec["schemas"], schemas)
    assert "Health.stream removed or changed" in broken and added == {"Panel.site"}


def test_a_token_app_leaves_the_next_app_without_one_untouched() -> None:
    """The blueprints are module-level, shared by every app in the process: the token's security and
    401 belong to the document of the app that has a token only."""
    never_connected = create_engine("mysql+pymysql://nobody@127.0.0.1:1/none")
    secured = create_app(Settings(api_token="a-token"), engine=never_connected, rate_per_second=None).api_doc
    open_doc = create_app(Settings(), engine=never_connected, rate_per_second=None).api_doc
    secured_ops = contract(secured)["operations"]
    assert secured_ops["GET /api/v1/panels"]["security"] and "401" in secured_ops["GET /api/v1/panels"]["responses"]
    for name, op in contract(open_doc)["operations"].items():
        assert op["security"] is None and "401" not in op["responses"], name
