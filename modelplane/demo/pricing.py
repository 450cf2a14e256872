"""List prices from the price map LiteLLM ships.

`litellm.model_cost` is loaded from `model_prices_and_context_window_backup.json` inside the
LiteLLM package when LITELLM_LOCAL_MODEL_COST_MAP=True. The demo reads that same file directly:
importing LiteLLM takes several seconds, and the simulated GPT-4o only needs two numbers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    context_window: int

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok
        ) / 1_000_000


def litellm_price_map_path() -> Path:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("LiteLLM is not installed; it supplies the price map")
    return Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE


def litellm_price(model: str, price_map_file: Path | None = None) -> ModelPrice:
    """The list price of `model` as LiteLLM's bundled price map gives it."""
    path = price_map_file or litellm_price_map_path()
    entries = json.loads(path.read_text(encoding="utf-8"))
    entry = entries.get(model)
    if entry is None:
        raise KeyError(f"{model!r} is not in LiteLLM's price map ({path})")
    return ModelPrice(
        model=model,
        input_usd_per_mtok=float(entry["input_cost_per_token"]) * 1_000_000,
        output_usd_per_mtok=float(entry["output_cost_per_token"]) * 1_000_000,
        context_window=int(entry.get("max_input_tokens") or entry["max_tokens"]),
    )
