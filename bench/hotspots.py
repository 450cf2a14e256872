"""Summarise a py-spy `--format raw` profile (collapsed stacks) into self and inclusive hot spots.

Run: `python -m bench.hotspots PROFILE.raw [--top N] [--match TEXT]`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.harness import REPO_ROOT

# py-spy frames look like `function (path/to/file.py:123)`; the line number is dropped so a
# function counts once however many of its lines were sampled.
FRAME_LINE = re.compile(r":\d+\)$")
# Checked in order: a venv inside the repo holds site-packages under the repo's root.
PATH_MARKERS = (
    "site-packages/",
    f"/lib/python{sys.version_info.major}.{sys.version_info.minor}/",
    f"{REPO_ROOT}/",
)
IDLE_FUNCTIONS = (
    "select (selectors.py",
    "run_forever (asyncio",
    "_run_once (asyncio",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.py",
)


# Our own code is reported per file; everything else per top-level package.
OWN_CODE_PREFIXES = ("router/", "operator/", "modelplane/", "bench/")


def component(frame: str) -> str:
    """`aiohttp`, `uvicorn`, `asyncio`, ... or, for our own code, its file."""
    location = frame.rpartition(" (")[2].rstrip(")")
    if location.startswith(OWN_CODE_PREFIXES):
        return location
    return location.split("/", 1)[0].removesuffix(".py")


@dataclass(frozen=True)
class Hotspots:
    total_samples: int
    idle_samples: int
    self_samples: Counter[str]
    inclusive_samples: Counter[str]

    def by_component(self) -> Counter[str]:
        grouped: Counter[str] = Counter()
        for frame, count in self.self_samples.items():
            grouped[component(frame)] += count
        return grouped

    def busy_samples(self) -> int:
        return self.total_samples - self.idle_samples

    def table(
        self, counter: Counter[str], top: int, match: str = "", below: float = 1.01
    ) -> list[tuple[str, float]]:
        """(frame, share of busy samples) for the top frames matching `match`, under `below`."""
        busy = max(1, self.busy_samples())
        rows = [
            (frame, count / busy)
            for frame, count in counter.most_common()
            if match in frame and count / busy < below
        ]
        return rows[:top]


def shorten(frame: str) -> str:
    """`function (file)` with the file relative to site-packages, the stdlib or the repo."""
    frame = FRAME_LINE.sub(")", frame.strip())
    for marker in PATH_MARKERS:
        if marker in frame:
            function, _, location = frame.partition(" (")
            return f"{function} ({location.split(marker, 1)[1]}"
    return frame


def load(path: Path) -> Hotspots:
    return parse(path.read_text(errors="replace"))


def parse(collapsed_stacks: str) -> Hotspots:
    """Hot spots of py-spy's raw output: one `frame;frame;...;leaf COUNT` line per stack."""
    self_samples: Counter[str] = Counter()
    inclusive_samples: Counter[str] = Counter()
    total = idle = 0
    for line in collapsed_stacks.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [shorten(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        # A sample whose innermost Python frame is the event loop's wait is an idle thread.
        if any(leaf.startswith(marker) for marker in IDLE_FUNCTIONS):
            idle += count
            continue
        self_samples[leaf] += count
        for frame in set(frames):
            inclusive_samples[frame] += count
    return Hotspots(total, idle, self_samples, inclusive_samples)


def render(hotspots: Hotspots, top: int, match: str = "") -> str:
    lines = [
        f"samples: {hotspots.total_samples}, idle (event loop waiting): {hotspots.idle_samples}",
        "",
        "self time (share of busy samples):",
    ]
    lines += [
        f"  {share:6.1%}  {frame}" for frame, share in hotspots.table(hotspots.self_samples, top)
    ]
    lines += ["", "self time by component (our files, other packages):"]
    lines += [
        f"  {share:6.1%}  {name}" for name, share in hotspots.table(hotspots.by_component(), top)
    ]
    # Frames on (nearly) every stack, such as the server's entry point, say nothing.
    lines += ["", f"inclusive time{f' (frames matching {match!r})' if match else ''}:"]
    lines += [
        f"  {share:6.1%}  {frame}"
        for frame, share in hotspots.table(hotspots.inclusive_samples, top, match, below=0.9)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only inclusive frames containing this text")
    args = parser.parse_args()
    print(render(load(args.profile), args.top, args.match))


if __name__ == "__main__":
    main()
