"""Headless Chromium for the page tests (Debian's package; `make test` installs it)."""

from __future__ import annotations

import os
import shutil

import pytest

#: no network use of its own: this machine's network is closed and the pages are self-contained
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    """The browser's path; fails under CI (the pages must be checked there), skips elsewhere."""
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    message = "headless Chromium is not installed (scripts/ensure-chromium, or apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
