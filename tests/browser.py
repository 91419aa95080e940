"""A real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) on `emotion app`."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

EMOTION = str(Path(sys.executable).parent / "emotion")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def browser_binaries() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) found on PATH, or None for what is missing."""
    chromium = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    return chromium, shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_app(project: Path, *args: str, timeout: float = 300) -> Iterator[str]:
    """`emotion app ARGS` started in ``project`` on a free port; yields its base URL, stops it afterwards."""
    port = free_port()
    log = (project / f"app-{port}.log").open("w")
    process = subprocess.Popen([EMOTION, "app", "--port", str(port), *args], cwd=project, stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "120"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"emotion app exited with {process.returncode}:\n"
                                     f"{(project / f'app-{port}.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"emotion app did not answer on {url} within {timeout} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def chromium_driver(width: int = 1400, height: int = 1000):
    """A headless Chromium driven by chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def wait_for_text(driver, texts: list[str], timeout: float = 120) -> str:
    """Wait until every one of ``texts`` is in the live page (canvas tables included: their cells are in
    the DOM); returns the page source. Fails naming what is still missing."""
    deadline = time.monotonic() + timeout
    while True:
        source = driver.page_source
        missing = [text for text in texts if text not in source]
        if not missing:
            return source
        if time.monotonic() > deadline:
            raise AssertionError(f"not on {driver.current_url} after {timeout} s: {missing}")
        time.sleep(0.5)


def full_page_screenshot(driver, path: Path, width: int = 1400) -> Path:
    """A PNG of the whole page (the window grown to the content's height)."""
    height = driver.execute_script(  # Streamlit scrolls inside a container, not the document
        "return Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight));")
    driver.set_window_size(width, min(max(int(height) + 100, 800), 6000))
    time.sleep(1.5)  # charts re-lay themselves out at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def wait_for_element(driver, css: str, timeout: float = 120):
    """The first element matching ``css`` once it is in the page."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located(("css selector", css)))
