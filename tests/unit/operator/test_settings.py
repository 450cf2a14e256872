"""Operator settings refuse what they do not know and what would break a large model's start."""

from __future__ import annotations

import pydantic
import pytest
from modelplane.operator.settings import OperatorSettings


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra_forbidden"):
        OperatorSettings.model_validate({"vllm_imgae": "vllm/vllm-openai:latest"})


def test_unknown_nested_setting_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra_forbidden"):
        OperatorSettings.model_validate({"keda": {"enabled": True, "server": "x"}})


def test_startup_budget_below_thirty_minutes_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 1800"):
        OperatorSettings(startup_budget_seconds=600)


def test_engine_images_are_pinned_to_a_version_not_latest() -> None:
    settings = OperatorSettings()
    for image in (settings.vllm_image, settings.triton_image, settings.downloader_image):
        tag = image.rsplit(":", 1)[1]
        assert tag[0].isdigit() or tag.startswith("v")
        assert "latest" not in tag
    assert settings.triton_image.endswith("-vllm-python-py3")
