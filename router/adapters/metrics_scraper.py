"""Scrape in-cluster engines' Prometheus `/metrics` for queue depth, KV-cache use and throughput.

vLLM (and Triton's vLLM backend) export `vllm:num_requests_waiting`, `vllm:num_requests_running`,
`vllm:kv_cache_usage_perc` (`vllm:gpu_cache_usage_perc` before vLLM 0.10),
`vllm:request_success_total` and `vllm:generation_tokens_total`. Triton's TensorRT-LLM backend
exports `nv_trt_llm_request_metrics{request_type="waiting"|"active"}`,
`nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}` (or used/max blocks) and
Triton's own `nv_inference_request_success`. Values are summed over label sets (several models
or LoRA adapters on one engine).

One scrape per backend per interval runs in a background task; the request path only reads the
latest `EngineLoad`. Connection failures in consecutive rounds mark the backend unreachable (no
replica answering, e.g. scaled to zero); a timeout keeps what is known (slow is not gone), and a
404 or an unknown format just means the engine exports nothing useful.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from modelplane.router.policy.latency import (
    EngineLoad,
    EngineSample,
    capacity_throughput,
    engine_load,
    self_hosted_usd_per_mtok,
)
from modelplane.router.state import Clock

logger = logging.getLogger(__name__)

_SAMPLE_LINE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')

_VLLM_WAITING = "vllm:num_requests_waiting"
_VLLM_RUNNING = "vllm:num_requests_running"
_VLLM_KV = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
_VLLM_COMPLETED = "vllm:request_success_total"
_VLLM_GENERATED = "vllm:generation_tokens_total"
_TRT_REQUESTS = "nv_trt_llm_request_metrics"
_TRT_KV = "nv_trt_llm_kv_cache_block_metrics"
_TRITON_SUCCESS = "nv_inference_request_success"


def parse_engine_metrics(text: str, at: float) -> EngineSample | None:
    """The engine sample in a Prometheus text exposition; None if it has no queue metric."""
    sums: dict[str, float] = {}
    trt_requests: dict[str, float] = {}
    trt_kv: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        match = _SAMPLE_LINE.match(line)
        if match is None:
            continue
        name = match.group("name")
        if not (name.startswith(("vllm:", "nv_trt_llm_")) or name == _TRITON_SUCCESS):
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        if value != value:  # NaN
            continue
        if name in (_TRT_REQUESTS, _TRT_KV):
            labels = dict(_LABEL.findall(match.group("labels") or ""))
            target, key = (
                (trt_requests, labels.get("request_type", ""))
                if name == _TRT_REQUESTS
                else (trt_kv, labels.get("kv_cache_block_type", ""))
            )
            target[key] = target.get(key, 0.0) + value
            continue
        sums[name] = sums.get(name, 0.0) + value
    if _VLLM_WAITING in sums or _VLLM_RUNNING in sums:
        kv = next((sums[name] for name in _VLLM_KV if name in sums), None)
        return EngineSample(
            at=at,
            waiting=sums.get(_VLLM_WAITING, 0.0),
            running=sums.get(_VLLM_RUNNING, 0.0),
            kv_cache_usage=kv,
            requests_completed_total=sums.get(_VLLM_COMPLETED),
            generated_tokens_total=sums.get(_VLLM_GENERATED),
        )
    if "waiting" in trt_requests or "active" in trt_requests:
        kv = trt_kv.get("fraction")
        if kv is None and trt_kv.get("max"):
            kv = trt_kv.get("used", 0.0) / trt_kv["max"]
        return EngineSample(
            at=at,
            waiting=trt_requests.get("waiting", 0.0),
            running=trt_requests.get("active", trt_requests.get("scheduled", 0.0)),
            kv_cache_usage=kv,
            requests_completed_total=sums.get(_TRITON_SUCCESS),
        )
    return None


def metrics_url_for(api_base: str, engine: str = "vllm") -> str:
    """Where an engine serves `/metrics`, given its OpenAI base URL (`http://host:8000/v1`).

    vLLM serves it on the API port; Triton on its metrics port 8002.
    """
    base = api_base.rstrip("/").removesuffix("/v1")
    if engine == "triton":
        base = re.sub(r":\d+$", "", base) + ":8002"
    return f"{base}/metrics"


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    backend: str
    metrics_url: str
    gpu_hour_usd: float | None = None


@dataclass(frozen=True, slots=True)
class LiveEngine:
    """What the scraper knows about one backend."""

    reachable: bool
    load: EngineLoad | None = None
    tokens_per_second: float | None = None  # what it can deliver (`capacity_throughput`)
    usd_per_mtok: float | None = None  # gpu_hour_usd at that throughput


@dataclass(slots=True)
class _Tracked:
    target: ScrapeTarget
    sample: EngineSample | None = None
    live: LiveEngine = LiveEngine(reachable=True)
    refused: int = 0  # consecutive scrapes that found nothing listening


class EngineMetricsScraper:
    """Scrapes every target every `interval_s`; `live()` is a dictionary read."""

    def __init__(
        self,
        interval_s: float = 1.0,
        timeout_s: float = 1.0,
        clock: Clock = time.monotonic,
        on_round: Callable[[], None] | None = None,
        unreachable_after: int = 2,
    ) -> None:
        self._interval_s = interval_s
        # A backend is unreachable (no replica, e.g. scaled to zero) after this many scrapes in a
        # row found nothing listening; one lost connection under load must not take it away.
        self._unreachable_after = unreachable_after
        self._on_round = on_round
        self.rounds = 0  # completed scrape rounds; what `live()` returns changes only with it
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._live: Mapping[str, LiveEngine] = {}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    def set_targets(self, targets: Iterable[ScrapeTarget]) -> None:
        """Scrape exactly these backends from now on; history of unchanged targets is kept."""
        tracked: dict[str, _Tracked] = {}
        for target in targets:
            known = self._tracked.get(target.backend)
            tracked[target.backend] = (
                _Tracked(target=target, sample=known.sample, live=known.live)
                if known is not None and known.target.metrics_url == target.metrics_url
                else _Tracked(target=target)
            )
        self._tracked = tracked

    def live(self) -> Mapping[str, LiveEngine]:
        """The latest round's view; the same object until the next round completes."""
        return self._live

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def scrape_once(self) -> None:
        entries = list(self._tracked.values())
        await asyncio.gather(*(self._scrape(entry) for entry in entries))
        self._live = {name: entry.live for name, entry in self._tracked.items()}
        self.rounds += 1
        if self._on_round is not None:
            self._on_round()

    async def _run(self) -> None:
        while True:
            started = self._clock()
            try:
                await self.scrape_once()
            except Exception:  # never let one bad round stop scraping
                logger.exception("engine metrics scrape failed")
            await asyncio.sleep(max(0.0, self._interval_s - (self._clock() - started)))

    async def _scrape(self, entry: _Tracked) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(entry.target.metrics_url) as response:
                text = await response.text() if response.status == 200 else ""
        except TimeoutError:
            return  # slow is not gone: keep what is known
        except (aiohttp.ClientConnectionError, OSError):
            entry.refused += 1
            if entry.refused >= self._unreachable_after:
                entry.live = LiveEngine(reachable=False)
                entry.sample = None
            return
        except aiohttp.ClientError:
            return  # a malformed answer says nothing about whether it is up
        entry.refused = 0
        sample = parse_engine_metrics(text, self._clock())
        if sample is None:
            entry.live = LiveEngine(reachable=True)
            return
        load = engine_load(entry.sample, sample)
        throughput = capacity_throughput(entry.live.tokens_per_second, load)
        gpu_hour_usd = entry.target.gpu_hour_usd
        cost = (
            self_hosted_usd_per_mtok(gpu_hour_usd, throughput)
            if gpu_hour_usd is not None and throughput is not None
            else None
        )
        entry.sample = sample
        entry.live = LiveEngine(
            reachable=True, load=load, tokens_per_second=throughput, usd_per_mtok=cost
        )


__all__ = [
    "EngineMetricsScraper",
    "LiveEngine",
    "ScrapeTarget",
    "metrics_url_for",
    "parse_engine_metrics",
]
