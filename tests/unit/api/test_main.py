"""``scim-api``'s entry: the cluster's lists start before the web stack is imported."""

from __future__ import annotations

import subprocess
import sys

WEB_STACK = ("fastapi", "starlette", "pydantic", "scim2_models", "scim_api.app", "scim_api.protocol")


def test_the_entry_and_the_state_it_starts_do_not_import_the_web_stack() -> None:
    """main.py starts the informers, then imports FastAPI and scim2-models in a thread while
    the pages arrive (about 3 s of one core at 100,000 groups). Were its own imports or the
    state's to pull them in, the lists would wait for them again."""
    code = f"import sys, scim_api.main; print([m for m in {WEB_STACK!r} if m in sys.modules])"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"
