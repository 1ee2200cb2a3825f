"""Schemathesis generates requests from the OpenAPI description of the JSON API (valid ones
and, separately, ones that break the schema) and sends them to a running collector, signed
in as an admin, who may call everything: none may end in a server error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from roomwatch.web.auth import issue_token
from web_stack import WebStack

EXAMPLES = 15


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_a_server_error(web_stack: WebStack, mode: GenerationMode) -> None:
    agent = web_stack.agent()
    agent.status()
    agent.telemetry(occupied=True, door_closed=True, door_locked=True, lock_permit=False)
    secret, _ = issue_token(
        web_stack.collector.store.engine,
        web_stack.user_ids["ada"],
        "schemathesis",
        "test",
        datetime.now(UTC),
    )
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_url(web_stack.url + "/api/openapi.json")
    session = requests.Session()
    web_stack.closers.append(session.close)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 14

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=web_stack.url, session=session, headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.200} -> "
                    f"{response.status_code}: {response.text[:300]}"
                )

        run()
    assert not failures, "\n".join(failures[:20])
