"""The real local model of ``../shared/llm/start``, for opt-in tests: skip cleanly without it."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

# Read at import: the test isolation removes every SHIPMATES_* variable before each test.
_PID = os.environ.get("SHIPMATES_TEST_LLM_PID")
_BASE = os.environ.get("OPENAI_API_BASE", "")


def real_llm_base() -> str:
    """The model server's OpenAI-compatible base URL; skips the test when it is not running."""
    if not _PID or not _BASE:
        pytest.skip('no local test model: run eval "$(../shared/llm/start)" first (opt-in)')
    url = urlparse(_BASE)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=1).close()
    except OSError:
        pytest.skip(f"the local test model at {_BASE} does not answer")
    return _BASE
