"""The operator's process-wide memory settings, made first thing at start (docs/operator.md,
"Memory")."""

from __future__ import annotations

import asyncio.sslproto
from collections.abc import Callable
from typing import Any

import pytest

from scim_core import heap
from scim_operator.main import tune_memory


def test_the_operator_pins_the_mmap_threshold_and_reads_tls_in_64_kib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", 256 * 1024)  # asyncio's own
    pinned: list[Callable[..., Any] | None] = []
    monkeypatch.setattr(heap, "fix_mmap_threshold", lambda mallopt: pinned.append(mallopt) or True)
    tune_memory()
    assert asyncio.sslproto.SSLProtocol.max_size == 64 * 1024
    assert len(pinned) == 1 and callable(pinned[0])  # glibc's mallopt, looked up in this process
