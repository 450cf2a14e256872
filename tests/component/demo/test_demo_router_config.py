"""The router configuration the demo generates is one the router accepts, in both modes."""

from __future__ import annotations

import yaml
from modelplane.router.config import parse_config
from modelplane.router.policy.types import Location

from modelplane.demo.runner import EXTERNAL_BACKEND, LOCAL_BACKEND, router_config


def test_simulated_mode_points_gpt4o_at_the_loopback_simulator() -> None:
    config = router_config("http://127.0.0.1:1001/v1", "http://127.0.0.1:1002/v1", False)
    parsed = parse_config(yaml.safe_dump(config), environ={})
    backends = {backend.name: backend for backend in parsed.backends}
    assert backends[LOCAL_BACKEND].location is Location.IN_CLUSTER
    assert backends[LOCAL_BACKEND].api_base == "http://127.0.0.1:1001/v1"
    assert backends[EXTERNAL_BACKEND].location is Location.EXTERNAL
    assert backends[EXTERNAL_BACKEND].api_base == "http://127.0.0.1:1002/v1"


def test_real_api_mode_reads_the_key_from_the_environment_and_uses_openais_endpoint() -> None:
    config = router_config("http://127.0.0.1:1001/v1", None, True)
    parsed = parse_config(yaml.safe_dump(config), environ={"OPENAI_API_KEY": "sk-test"})
    external = next(backend for backend in parsed.backends if backend.name == EXTERNAL_BACKEND)
    assert external.api_base is None  # the router's OpenAI default
    assert external.api_key == "sk-test"
