"""Parsing vLLM and Triton TensorRT-LLM Prometheus expositions into engine samples."""

from __future__ import annotations

import pytest
from modelplane.router.adapters.metrics_scraper import metrics_url_for, parse_engine_metrics

VLLM = """\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="llama-3-8b"} 7.0
vllm:num_requests_running{engine="0",model_name="llama-3-8b"} 3.0
vllm:kv_cache_usage_perc{engine="0",model_name="llama-3-8b"} 0.42
vllm:request_success_total{engine="0",finished_reason="stop",model_name="llama-3-8b"} 90.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="llama-3-8b"} 10.0
vllm:generation_tokens_total{engine="0",model_name="llama-3-8b"} 12345.0
vllm:time_to_first_token_seconds_bucket{le="0.001",model_name="llama-3-8b"} 0.0
process_cpu_seconds_total 12.5
"""

TRITON_TRT_LLM = """\
# TYPE nv_trt_llm_request_metrics gauge
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="waiting",version="1"} 4
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="context",version="1"} 1
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="scheduled",version="1"} 2
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="max",version="1"} 512
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="active",version="1"} 3
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="tensorrt_llm",version="1"} 200
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="tensorrt_llm",version="1"} 50
nv_inference_request_success{model="tensorrt_llm",version="1"} 77
"""


def test_vllm_metrics_are_summed_over_label_sets() -> None:
    sample = parse_engine_metrics(VLLM, at=5.0)

    assert sample is not None
    assert (sample.waiting, sample.running, sample.kv_cache_usage) == (7.0, 3.0, 0.42)
    assert sample.requests_completed_total == 100.0
    assert sample.generated_tokens_total == 12345.0
    assert sample.at == 5.0


def test_older_vllm_gpu_cache_metric_is_read_as_kv_cache_usage() -> None:
    text = "vllm:num_requests_waiting 1\nvllm:gpu_cache_usage_perc 0.9\n"

    sample = parse_engine_metrics(text, at=0.0)

    assert sample is not None
    assert sample.kv_cache_usage == 0.9


def test_triton_trt_llm_request_and_kv_block_metrics() -> None:
    sample = parse_engine_metrics(TRITON_TRT_LLM, at=0.0)

    assert sample is not None
    assert (sample.waiting, sample.running) == (4.0, 3.0)
    assert sample.kv_cache_usage == pytest.approx(0.25)
    assert sample.requests_completed_total == 77.0


def test_exposition_without_engine_metrics_gives_no_sample() -> None:
    assert (
        parse_engine_metrics("process_cpu_seconds_total 1\n# vllm:num_requests_waiting 3\n", 0.0)
        is None
    )


def test_metrics_url_is_next_to_the_openai_base() -> None:
    assert metrics_url_for("http://llama.ml.svc:8000/v1") == "http://llama.ml.svc:8000/metrics"
    assert (
        metrics_url_for("http://llama.ml.svc:8000/v1", "triton")
        == "http://llama.ml.svc:8002/metrics"
    )
