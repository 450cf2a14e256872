"""Router configuration: variable expansion, validation errors, and the catalog built from it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from modelplane.router.catalog import CatalogSource, catalog_from_config, hash_api_key
from modelplane.router.config import (
    AdapterKind,
    ConfigError,
    expand_variables,
    load_config,
    parse_config,
)
from modelplane.router.policy.types import Capability, DataClass, Location

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "router.yaml"

MINIMAL = """
backends:
  - name: llama
    model: hosted_vllm/llama-3-8b
    api_base: http://127.0.0.1:9/v1
    location: in-cluster
    context_window: 8192
tenants:
  - name: team
    api_keys: [secret-key]
"""


def test_expansion_uses_the_environment_and_defaults() -> None:
    environ = {"HOST": "llama.svc", "EMPTY": ""}
    text = "${HOST}:${PORT:-8000} ${EMPTY:-fallback} ${HOST:-unused}"
    assert expand_variables(text, environ) == "llama.svc:8000 fallback llama.svc"


def test_expansion_names_every_missing_variable() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY, OTHER"):
        expand_variables("${OPENAI_API_KEY} ${OTHER} ${OPENAI_API_KEY}", {})


def test_a_variable_set_to_empty_without_default_expands_to_empty() -> None:
    assert expand_variables("key=${KEY}", {"KEY": ""}) == "key="


def test_example_configuration_loads_with_the_issue_backends_and_tenant() -> None:
    environ = {"LLAMA_BASE_URL": "http://llama:8000/v1", "OPENAI_API_KEY": "sk-test"}
    config = load_config(EXAMPLE, environ)
    llama, gpt = config.backends
    assert (llama.name, llama.location, llama.context_window) == (
        "llama-3-8b",
        Location.IN_CLUSTER,
        8192,
    )
    assert llama.capabilities == {Capability.CHAT, Capability.JSON}
    assert llama.api_base == "http://llama:8000/v1"
    assert (gpt.name, gpt.location, gpt.context_window) == ("gpt-4o", Location.EXTERNAL, 128000)
    assert gpt.capabilities == set(Capability)
    assert gpt.api_base == "https://api.openai.com/v1"
    assert gpt.api_key == "sk-test"
    catalog = catalog_from_config(config)
    tenant = catalog.authenticate("dev-key")
    assert tenant is not None
    assert tenant.name == "dev"


def test_example_configuration_refuses_to_start_without_the_openai_key() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_config(EXAMPLE, {"LLAMA_BASE_URL": "http://llama:8000/v1"})


def test_example_tenant_key_comes_from_the_environment_when_set() -> None:
    environ = {"LLAMA_BASE_URL": "http://l/v1", "OPENAI_API_KEY": "k", "MODELPLANE_API_KEY": "mk"}
    catalog = catalog_from_config(load_config(EXAMPLE, environ))
    assert catalog.authenticate("mk") is not None
    assert catalog.authenticate("dev-key") is None


def test_unknown_fields_are_rejected_with_their_location() -> None:
    with pytest.raises(ConfigError, match=r"backends\.0\.colour"):
        parse_config(
            MINIMAL.replace("context_window: 8192", "context_window: 8192\n    colour: red")
        )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("context_window: 8192", "context_window: 8192\n    input_usd_per_mtok: 1", "both input"),
        ("context_window: 8192", "context_window: 8192\n    gpu_hour_usd: 2", "both gpu_hour_usd"),
        ("context_window: 8192", "context_window: 0", "greater than 0"),
        ("context_window: 8192", "context_window: 8192\n    capabilities: [chat, mind]", "capab"),
        ("location: in-cluster", "location: moon", "location"),
        ("name: llama", "name: auto", "reserved"),
    ],
)
def test_invalid_backends_are_rejected(old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(MINIMAL.replace(old, new))


def test_duplicate_backend_names_and_unknown_allowed_backends_are_rejected() -> None:
    backend = MINIMAL.split("tenants:")[0].split("backends:\n")[1]
    duplicated = MINIMAL.replace("tenants:", backend + "tenants:")
    with pytest.raises(ConfigError, match="duplicate backend name"):
        parse_config(duplicated)
    with pytest.raises(ConfigError, match=r"unknown backend.*gpt-5"):
        parse_config(MINIMAL + "    allowed_backends: [gpt-5]\n")


def test_a_tenant_needs_a_key_and_keys_are_unique_across_tenants() -> None:
    with pytest.raises(ConfigError, match="needs api_keys"):
        parse_config(MINIMAL.replace("    api_keys: [secret-key]\n", ""))
    shared = MINIMAL + "  - name: other\n    api_keys: [secret-key]\n"
    with pytest.raises(ConfigError, match="share an API key"):
        catalog_from_config(parse_config(shared))


def test_openai_compatible_backends_use_the_pass_through_and_others_litellm() -> None:
    config = parse_config(
        MINIMAL.replace(
            "tenants:",
            """  - name: claude
    model: anthropic/claude-3-5-sonnet-20241022
    api_key: k
    location: external
    context_window: 200000
    input_usd_per_mtok: 3
    output_usd_per_mtok: 15
tenants:""",
        )
    )
    llama, claude = config.backends
    assert llama.resolved_adapter is AdapterKind.OPENAI
    assert llama.upstream_model == "llama-3-8b"
    assert claude.resolved_adapter is AdapterKind.LITELLM


def test_gpt_4o_prices_default_from_litellms_price_map() -> None:
    config = parse_config(
        MINIMAL.replace(
            "tenants:",
            """  - name: gpt-4o
    model: openai/gpt-4o
    api_key: k
    location: external
tenants:""",
        )
    )
    gpt = catalog_from_config(config).backends["gpt-4o"].snapshot
    assert gpt.input_usd_per_mtok == pytest.approx(2.5)
    assert gpt.output_usd_per_mtok == pytest.approx(10.0)
    assert gpt.context_window == 128000


def test_an_external_model_unknown_to_the_price_map_needs_explicit_prices() -> None:
    config = parse_config(
        MINIMAL.replace(
            "tenants:",
            """  - name: mystery
    model: openai/mystery-model-9000
    location: external
    context_window: 1000
tenants:""",
        )
    )
    with pytest.raises(ConfigError, match="mystery-model-9000"):
        catalog_from_config(config, price_map={})


def test_self_hosted_price_is_gpu_hour_over_throughput() -> None:
    text = MINIMAL.replace(
        "context_window: 8192",
        "context_window: 8192\n    gpu_hour_usd: 3.6\n    tokens_per_second: 1000",
    )
    snapshot = catalog_from_config(parse_config(text), price_map={}).backends["llama"].snapshot
    assert snapshot.input_usd_per_mtok == pytest.approx(1.0)  # 3.6 $/h / 3.6 M tokens per hour
    assert snapshot.output_usd_per_mtok == pytest.approx(1.0)


def test_keys_given_as_sha256_authenticate_and_plain_keys_are_not_stored() -> None:
    digest = hashlib.sha256(b"hashed-key").hexdigest()
    text = MINIMAL.replace("api_keys: [secret-key]", f"api_key_sha256: ['sha256:{digest}']")
    catalog = catalog_from_config(parse_config(text), price_map={})
    tenant = catalog.authenticate("hashed-key")
    assert tenant is not None
    assert tenant.default_data_class is DataClass.INTERNAL
    assert catalog.authenticate("secret-key") is None
    assert catalog.authenticate("") is None
    assert set(catalog.tenants_by_key_hash) == {hash_api_key("hashed-key")}


def test_catalog_source_swaps_the_whole_catalog_and_tells_listeners() -> None:
    first = catalog_from_config(parse_config(MINIMAL), price_map={})
    second = catalog_from_config(
        parse_config(MINIMAL.replace("secret-key", "rotated-key")), price_map={}
    )
    source = CatalogSource(first)
    seen = []
    source.subscribe(seen.append)
    source.replace(second)
    assert source.current is second
    assert seen == [second]
    assert source.current.authenticate("secret-key") is None
