"""The API fuzzed from its own OpenAPI schema (schemathesis, bounded): no answer is a 5xx, every 4xx is JSON
``{code, message}``. Runs against the session farm with the tests' key (auth on), so requests reach the routes.

Each operation gets a bounded number of generated requests (``EXAMPLES``), derandomized so that a run is
repeatable; the operations are driven through Hypothesis directly (schemathesis's own pytest plugin does not
load under this pytest).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.farm import Farm

pytestmark = pytest.mark.e2e
EXAMPLES = 12


def check(case: schemathesis.Case, farm: Farm) -> None:
    response = case.call(base_url=farm.url, headers={"Authorization": f"Bearer {farm.token}"}, timeout=60)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"code", "message"}, (case.path, body)
        assert isinstance(body["code"], str) and body["code"] and isinstance(body["message"], str)


def test_no_server_errors_and_every_refusal_is_json(farm: Farm) -> None:
    schema = schemathesis.openapi.from_url(f"{farm.url}/openapi.json",
                                           headers={"Authorization": f"Bearer {farm.token}"})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            check(case, farm)

        fuzz()
