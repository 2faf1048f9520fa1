"""Prometheus metrics in the text exposition format, with vLLM's names where one exists.

vLLM's names (``vllm:...``, from its ``vllm/engine/metrics.py``) let existing dashboards
read a superlab server; what vLLM has no name for is ``superlab:...``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import ClassVar

# Seconds; vLLM's buckets for time to first token and time per output token.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)  # fmt: skip
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0)  # fmt: skip
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
               60.0, 120.0, 240.0, 480.0)  # fmt: skip

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = [*labels, *extra]
    if not items:
        return ""
    esc = [(k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in items]
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc) + "}"


class Metrics:
    """Counters, gauges and histograms for one server (thread-safe)."""

    HELP: ClassVar[dict[str, tuple[str, str]]] = {
        "vllm:num_requests_running": ("gauge", "Requests in the running batch."),
        "vllm:num_requests_waiting": ("gauge", "Requests waiting to join the batch (queue)."),
        "vllm:request_success_total": ("counter", "Finished requests, by finish reason."),
        "vllm:prompt_tokens_total": ("counter", "Prompt tokens processed."),
        "vllm:generation_tokens_total": ("counter", "Tokens generated."),
        "vllm:time_to_first_token_seconds": ("histogram", "Time to first token."),
        "vllm:time_per_output_token_seconds": ("histogram", "Time per output token."),
        "vllm:e2e_request_latency_seconds": ("histogram", "End-to-end request latency."),
        "vllm:prefix_cache_queries_total": (
            "counter",
            "Prompt tokens looked up in the prefix cache.",
        ),
        "vllm:prefix_cache_hits_total": ("counter", "Prompt tokens found in the prefix cache."),
        "vllm:num_preemptions_total": (
            "counter",
            "Sequences preempted for KV blocks (recomputed).",
        ),
        "superlab:prefix_cache_hit_rate": ("gauge", "Prefix-cache hit tokens / query tokens."),
        "superlab:kv_blocks_used": (
            "gauge",
            "KV cache blocks held by sequences (all layer groups).",
        ),
        "superlab:kv_blocks_free": (
            "gauge",
            "KV cache blocks free or evictable (all layer groups).",
        ),
        "superlab:step_prefill_tokens": ("gauge", "Prompt tokens prefilled in the last step."),
        "superlab:step_decode_tokens": ("gauge", "Tokens decoded in the last step."),
        "superlab:http_requests_total": ("counter", "HTTP requests, by route and status."),
        "superlab:rejected_requests_total": ("counter", "Requests refused by a limit."),
        "superlab:refusals_total": ("counter", "Safety refusals, by category and stage."),
        "superlab:policy_flags_total": ("counter", "Safety flags logged but allowed."),
        "superlab:key_tokens_used": ("gauge", "Tokens a key has used, by key name."),
        "superlab:key_tokens_reserved": ("gauge", "Tokens held by a key's requests in flight."),
    }
    BUCKETS: ClassVar[dict[str, tuple[float, ...]]] = {
        "vllm:time_to_first_token_seconds": TTFT_BUCKETS,
        "vllm:time_per_output_token_seconds": TPOT_BUCKETS,
        "vllm:e2e_request_latency_seconds": E2E_BUCKETS,
    }

    def __init__(self, model_name: str) -> None:
        self.base: Labels = (("model_name", model_name),)
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._hist: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self.gauges: dict[str, float] = {}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = self.base + tuple(sorted(labels.items()))
        with self._lock:
            self._values[name][key] = self._values[name].get(key, 0.0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a labelled gauge (one value per label set)."""
        key = self.base + tuple(sorted(labels.items()))
        with self._lock:
            self._values[name][key] = value

    def observe(self, name: str, value: float) -> None:
        buckets = self.BUCKETS[name]
        with self._lock:
            counts = self._hist[name].setdefault(self.base, [0.0] * (len(buckets) + 2))
            for i, b in enumerate(buckets):
                if value <= b:
                    counts[i] += 1
            counts[-2] += 1  # count
            counts[-1] += value  # sum

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (tests and benchmarks read it)."""
        key = self.base + tuple(sorted(labels.items()))
        with self._lock:
            return self._values[name].get(key, 0.0)

    def render(self) -> str:
        """The exposition text."""
        lines: list[str] = []
        with self._lock:
            for name, (kind, text) in self.HELP.items():
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                if kind == "gauge" and name not in self._values:
                    lines.append(f"{name}{_fmt_labels(self.base)} {self.gauges.get(name, 0.0)}")
                elif kind in ("counter", "gauge"):
                    for labels, v in sorted(self._values[name].items()):
                        lines.append(f"{name}{_fmt_labels(labels)} {v}")
                else:
                    for labels, counts in self._hist[name].items():
                        for b, c in zip(self.BUCKETS[name], counts, strict=False):
                            le = _fmt_labels(labels, (("le", str(b)),))
                            lines.append(f"{name}_bucket{le} {c}")
                        inf = _fmt_labels(labels, (("le", "+Inf"),))
                        lines.append(f"{name}_bucket{inf} {counts[-2]}")
                        lines.append(f"{name}_count{_fmt_labels(labels)} {counts[-2]}")
                        lines.append(f"{name}_sum{_fmt_labels(labels)} {counts[-1]}")
        return "\n".join(lines) + "\n"
