"""An async HTTP/1.1 load generator cheap enough to leave the CPU to the server it measures.

Raw asyncio protocols on uvloop with httptools parsing and keep-alive connections: it costs a few
microseconds per request, several times less than an aiohttp client, so on a 2-core machine the
server under test, not the generator, is what saturates.

Modes (one JSON object on stdout):
- `closed`: `--concurrency` connections, each sends its next request when the last one finished,
  for `--duration` seconds (or `--requests` in total). `--concurrency 1` is the sequential mode.
- `open`: requests start at a fixed `--rate` per second whatever the server does, evenly spaced
  to the microsecond (a timerfd, see `PreciseAlarm`) or, with `--arrivals poisson`, as a Poisson
  process of that mean rate (independent clients; bursts happen). The first `--warmup` seconds
  at that rate are not measured: they open the connections a steady load keeps. Latency counts
  from when the generator dispatched a request, including any wait for a free connection, so a
  server that falls behind shows its queueing (no coordinated omission), while the generator's
  own lateness (it shares a core) is reported apart as `dispatch_lag_p99_ms`. `achieved_rps`
  below the rate means the server saturated.

Run: `python -m bench.loadgen --url http://127.0.0.1:P/v1/chat/completions --mode closed ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop

PROMPT = (
    "You are helping a platform team plan GPU capacity. Summarise, in two sentences, why a "
    "router in front of self-hosted LLaMA and a hosted model must add little latency, and "
    "what a team should measure before putting one on every request path."
)


def request_bytes(host: str, path: str, model: str, stream: bool, api_key: str) -> bytes:
    body = orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 32,
            "stream": stream,
        }
    )
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {api_key}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class ResponseFailed(Exception):
    pass


class ClientConnection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ResponseFailed(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ResponseFailed(f"bad response: {error}"))
            assert self.transport is not None
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))

    async def send(self, payload: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.body = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Recorder:
    stream: bool
    latencies_s: list[float] = field(default_factory=list)
    started_s: list[float] = field(default_factory=list)  # when each of latencies_s began
    dispatch_lag_s: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    warmup_requests: int = 0  # open mode: answered during the warm-up, not measured

    def check(self, status: int, body: bytes) -> bool:
        if status != 200:
            return self.fail(f"status {status}: {body[:200]!r}")
        if self.stream and b"[DONE]" not in body:
            return self.fail(f"stream without [DONE]: {body[:200]!r}")
        if not self.stream and b'"choices"' not in body:
            return self.fail(f"completion without choices: {body[:200]!r}")
        return True

    def fail(self, reason: str) -> bool:
        self.errors += 1
        if not self.first_error:
            self.first_error = reason
        return False


class Target:
    def __init__(self, url: str, model: str, stream: bool, api_key: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.payload = request_bytes(parts.netloc, parts.path or "/", model, stream, api_key)

    async def connect(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(ClientConnection, self.host, self.port)
        return connection


async def one_request(
    target: Target, connection: ClientConnection | None, recorder: Recorder, started: float
) -> ClientConnection | None:
    """Send one request; return the connection if it can be reused."""
    try:
        if connection is None or connection.closed:
            connection = await target.connect()
        status, body = await connection.send(target.payload)
    except (OSError, ResponseFailed) as error:
        recorder.fail(f"{type(error).__name__}: {error}")
        if connection is not None:
            connection.close()
        # A refused or dropped connection must not turn the generator into a busy loop.
        await asyncio.sleep(0.01)
        return None
    if recorder.check(status, body):
        recorder.latencies_s.append(time.perf_counter() - started)
        recorder.started_s.append(started)
    return connection


async def run_closed(
    target: Target, recorder: Recorder, concurrency: int, duration_s: float, total: int
) -> float:
    deadline = time.perf_counter() + duration_s
    remaining = [total if total > 0 else -1]

    async def worker() -> None:
        connection: ClientConnection | None = None
        while time.perf_counter() < deadline and remaining[0] != 0:
            remaining[0] -= 1
            connection = await one_request(target, connection, recorder, time.perf_counter())
        if connection is not None:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class PreciseAlarm:
    """A one-shot alarm at an absolute `time.monotonic()` instant, to the microsecond.

    asyncio's timers are too coarse to pace requests: uvloop rounds every delay to whole
    milliseconds (a 0.4 ms sleep returns at once, a 0.6 ms one after 1 ms) and the default loop
    waits in `epoll` with millisecond timeouts, so a generator pacing with `asyncio.sleep` sends
    requests in bursts a millisecond apart, not at its rate. A Linux timerfd is an hrtimer the
    event loop can wait on: one wake-up per request, no spinning, no thread.
    """

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd: int = fd

    def set(self, when: float) -> None:
        seconds = int(when)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(seconds, int((when - seconds) * 1e9)))
        if self._libc.timerfd_settime(self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def acknowledge(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        os.close(self.fd)


def arrival_times(rate: float, count: int, arrivals: str, seed: int = 1) -> list[float]:
    """Offsets in seconds from the start: evenly spaced, or a Poisson process of the same rate."""
    if arrivals == "uniform":
        return [index / rate for index in range(count)]
    generator = random.Random(seed)
    offsets: list[float] = []
    now = 0.0
    for _ in range(count):
        offsets.append(now)
        now += generator.expovariate(rate)
    return offsets


async def run_open(
    target: Target,
    recorder: Recorder,
    rate: float,
    duration_s: float,
    max_connections: int,
    arrivals: str = "uniform",
    warmup_s: float = 0.0,
) -> float:
    """Offer `rate` requests/s for `warmup_s` + `duration_s`; only the last `duration_s` count.

    The warm-up runs at the same rate so that the connections a steady load keeps open exist
    before measuring starts, as a client's keep-alive pool does; without it, every request of
    the first milliseconds opens a connection, and what is measured is how the server takes a
    burst of new connections (wrk2 discards a calibration period for the same reason).
    """
    idle: list[ClientConnection] = []
    in_flight: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(max_connections)
    loop = asyncio.get_running_loop()
    offsets = arrival_times(rate, int(rate * (warmup_s + duration_s)), arrivals)
    all_dispatched = loop.create_future()
    alarm = PreciseAlarm()
    # perf_counter and monotonic read the same clock on Linux; the alarm wants monotonic.
    began = time.monotonic() + 0.001
    measured_from = began + warmup_s
    warming_up = Recorder(stream=recorder.stream)
    next_index = 0

    async def fire(dispatched: float, counted: Recorder) -> None:
        async with slots:
            connection = idle.pop() if idle else None
            reused = await one_request(target, connection, counted, dispatched)
            if reused is not None:
                idle.append(reused)

    def dispatch_due() -> None:
        nonlocal next_index
        alarm.acknowledge()
        now = time.monotonic()
        while next_index < len(offsets) and began + offsets[next_index] <= now:
            scheduled = began + offsets[next_index]
            counted = recorder if scheduled >= measured_from else warming_up
            counted.dispatch_lag_s.append(now - scheduled)
            task = asyncio.create_task(fire(time.perf_counter(), counted))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            next_index += 1
        if next_index < len(offsets):
            alarm.set(began + offsets[next_index])
        elif not all_dispatched.done():
            all_dispatched.set_result(None)

    loop.add_reader(alarm.fd, dispatch_due)
    try:
        if offsets:
            alarm.set(began)
            await all_dispatched
    finally:
        loop.remove_reader(alarm.fd)
        alarm.close()
    if in_flight:
        await asyncio.wait(in_flight, timeout=max(30.0, duration_s))
    elapsed = time.monotonic() - measured_from
    for connection in idle:
        connection.close()
    # A failure is one whenever it happens: the warm-up's count, not just the measured part's.
    recorder.warmup_requests = len(warming_up.latencies_s)
    recorder.errors += warming_up.errors
    recorder.first_error = recorder.first_error or warming_up.first_error
    return elapsed


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass(frozen=True)
class SlowEpisodes:
    """How the slowest requests of a run are spread over time.

    A p99 made of requests slowed one by one (each paying some rare cost of its own) is a
    property of the server; one made of a few runs of consecutive requests is a stall (the
    process or its core stopped for milliseconds) and the queue it left behind.
    """

    count: int  # separate episodes among the slowest requests
    largest_share: float  # the share of the slowest requests in the largest episode
    largest_span_ms: float  # from the first to the last dispatch of the largest episode


def slow_episodes(
    started_s: list[float], latencies_s: list[float], fraction: float = 0.01, gap_s: float = 0.005
) -> SlowEpisodes:
    """Group the slowest `fraction` of requests into episodes by when they were dispatched:
    a slow request dispatched within `gap_s` of the previous slow one continues its episode."""
    if not latencies_s:
        return SlowEpisodes(0, 0.0, 0.0)
    by_latency = sorted(zip(latencies_s, started_s, strict=True), reverse=True)
    slow = sorted(started for _, started in by_latency[: max(1, round(fraction * len(by_latency)))])
    episodes: list[list[float]] = [[slow[0]]]
    for started in slow[1:]:
        if started - episodes[-1][-1] <= gap_s:
            episodes[-1].append(started)
        else:
            episodes.append([started])
    largest = max(episodes, key=len)
    return SlowEpisodes(
        count=len(episodes),
        largest_share=len(largest) / len(slow),
        largest_span_ms=(largest[-1] - largest[0]) * 1000.0,
    )


def summarise(recorder: Recorder, elapsed_s: float, cpu_s: float) -> dict[str, object]:
    ordered = sorted(recorder.latencies_s)
    episodes = slow_episodes(recorder.started_s, recorder.latencies_s)
    ms = 1000.0
    return {
        "requests": len(ordered),
        "errors": recorder.errors,
        "first_error": recorder.first_error,
        "elapsed_s": round(elapsed_s, 4),
        "achieved_rps": round(len(ordered) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "p50_ms": round(percentile(ordered, 0.50) * ms, 4),
        "p90_ms": round(percentile(ordered, 0.90) * ms, 4),
        "p99_ms": round(percentile(ordered, 0.99) * ms, 4),
        "max_ms": round(ordered[-1] * ms, 4) if ordered else float("nan"),
        "dispatch_lag_p99_ms": round(percentile(sorted(recorder.dispatch_lag_s), 0.99) * ms, 4)
        if recorder.dispatch_lag_s
        else 0.0,
        "p99_episodes": episodes.count,
        "p99_largest_episode_share": round(episodes.largest_share, 3),
        "p99_largest_episode_span_ms": round(episodes.largest_span_ms, 2),
        "loadgen_cpu_s": round(cpu_s, 3),
        "warmup_requests": recorder.warmup_requests,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    target = Target(args.url, args.model, args.stream, args.api_key)
    recorder = Recorder(stream=args.stream)
    cpu_before = time.process_time()
    if args.mode == "closed":
        elapsed = await run_closed(target, recorder, args.concurrency, args.duration, args.requests)
    else:
        elapsed = await run_open(
            target,
            recorder,
            args.rate,
            args.duration,
            args.concurrency,
            args.arrivals,
            args.warmup,
        )
    return summarise(recorder, elapsed, time.process_time() - cpu_before)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--api-key", default=os.environ.get("BENCH_API_KEY", "bench-key"))
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (open: max)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--requests", type=int, default=0, help="closed mode: stop after N")
    parser.add_argument("--rate", type=float, default=100.0, help="open mode: requests/s")
    parser.add_argument(
        "--arrivals",
        choices=["uniform", "poisson"],
        default="uniform",
        help="open mode: evenly spaced requests, or a Poisson process of the same mean rate",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="open mode: seconds at the same rate before measuring (connections get opened)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = uvloop.run(run(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
