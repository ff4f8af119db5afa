"""Headless Chromium for the browser checks: Debian's ``chromium``, as a user's browser would open a page.

``render(url, screenshot)`` loads a page (a ``file://`` report or a served UI), lets its scripts run,
saves a PNG screenshot and returns the DOM as the browser built it, so a test asserts what a person
would see (feed names, counts, levels), not only that a file exists. ``make test`` installs chromium
(Debian package) when it is missing; without it these tests fail with the command that installs it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
]
INSTALL_HINT = "install Debian's chromium: apt-get install -y chromium fonts-noto-cjk (make test does it when run as root)"


@dataclass
class Rendered:
    dom: str  # the page's DOM after its scripts ran (chromium --dump-dom)
    screenshot: Path  # a PNG of the page as shown at `window`

    @property
    def text(self) -> str:
        """The DOM with tags removed and whitespace collapsed: roughly what a reader sees."""
        import re

        body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", self.dom)
        return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise AssertionError(f"headless Chromium is needed for the browser checks: {INSTALL_HINT}")
    # the reports name towns, enterprises and rules in Chinese: without a CJK font they render as boxes
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    if not fonts.strip():
        raise AssertionError(
            "no CJK font: Chinese names would render as boxes in the screenshots; "
            "apt-get install -y fonts-noto-cjk (make test does it when run as root)"
        )
    return path


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="edw-chromium-") as profile:
        return subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def render(
    url: str,
    screenshot: Path,
    *,
    window: tuple[int, int] = (1400, 1000),
    budget_ms: int = 5000,
    timeout: float = 120,
) -> Rendered:
    """Open `url` in headless Chromium: its DOM after `budget_ms` of (virtual) time, and a screenshot."""
    common = [f"--window-size={window[0]},{window[1]}", f"--virtual-time-budget={budget_ms}"]
    dom = _run([*common, "--dump-dom", url], timeout)
    if dom.returncode != 0 or "<html" not in dom.stdout.lower():
        raise AssertionError(f"chromium could not render {url}: exit {dom.returncode}\n{dom.stderr[-2000:]}")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    shot = _run([*common, f"--screenshot={screenshot}", url], timeout)
    if shot.returncode != 0 or not screenshot.exists() or screenshot.stat().st_size < 1000:
        raise AssertionError(
            f"chromium took no screenshot of {url}: exit {shot.returncode}\n{shot.stderr[-2000:]}"
        )
    return Rendered(dom.stdout, screenshot)
