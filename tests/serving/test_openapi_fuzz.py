"""Schemathesis fuzzes every operation of the live OpenAPI schema: no input gives a 5xx.

Bounded: a fixed number of examples per generation mode, 127.0.0.1 only. The valid API
key is sent (so the fuzzer reaches the request parsing, not just the 401), and a second
run without it checks that unauthenticated junk is refused without errors too.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from serving.serving_support import API_KEY

pytestmark = pytest.mark.integration

# Examples per generation mode: enough to reach every operation and content type a few
# times while keeping the run to seconds (most answers are fast 4xx).
MAX_EXAMPLES = 60


def fuzz(server, mode: GenerationMode, headers: dict[str, str]) -> dict[int, int]:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", timeout=10)
    seen: dict[int, int] = {}
    session = requests.Session()

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        response = case.call(base_url=server.url, session=session, headers=headers, timeout=60)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (
            f"{case.method} {case.path} ({case.media_type}) -> {response.status_code}: "
            f"{response.text[:500]}"
        )

    check()
    return seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_never_get_a_server_error(server, mode):
    seen = fuzz(server, mode, {"Authorization": f"Bearer {API_KEY}"})
    assert 422 in seen, seen  # the fuzzer got past auth into the request parsing
    assert all(code < 500 for code in seen), seen


def test_fuzzed_requests_without_key_never_get_a_server_error(server):
    seen = fuzz(server, GenerationMode.POSITIVE, {})
    assert 401 in seen, seen
    assert all(code < 500 for code in seen), seen
