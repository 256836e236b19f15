"""Figures the suite measures (takeover, rollout, rotation), printed and written to
bench/results/e2e-cluster.json for the record."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(__file__).resolve().parents[1] / "bench" / "results" / "e2e-cluster.json"


class Results:
    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def record(self, name: str, **values: Any) -> None:
        self.figures[name] = values
        print(f"\n[e2e] {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()), flush=True)

    def write(self) -> None:
        if not self.figures:
            return
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
               "figures": self.figures}  # fmt: skip
        RESULTS_FILE.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"[e2e] figures written to {RESULTS_FILE}", flush=True)
