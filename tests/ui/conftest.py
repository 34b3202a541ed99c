"""Fixtures of the dashboard's tests: a real `hone api` (uvicorn) over the stack's embedded
backend (what `hone up` runs) with its worker, Debian's Chromium driven by Playwright, and
trained models from the inference tests.

One backend only: the dashboard reads through the API's own handlers, which every other
suite runs on both backends; the browser flows are the slow part, and once is enough.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Stack, fresh_backend
from tests.support.api_process import ApiProcess
from tests.support.stack import Backend

CHROMIUM = Path("/usr/bin/chromium")
# Every screenshot is also copied here, where people look at them after a run.
SHOTS = Path("/tmp/ui-shots")


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    data_dir: Path = tmp_path_factory.mktemp("hone-ui-embedded")
    with fresh_backend("embedded", data_dir) as backend:
        yield backend


@pytest.fixture(scope="session")
def ui_url(stack: Stack) -> Iterator[str]:
    server = ApiProcess(stack.backend, stack.backend.data_dir / "ui-api.log").start()
    yield server.url
    server.stop()


def _install_chromium() -> str:
    """apt-get install chromium (with sudo when not root); the output, for a failure."""
    apt = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    output = ""
    for command in (apt, ["apt-get", "update"], apt):
        try:
            done = subprocess.run(
                [*prefix, *command], capture_output=True, text=True, timeout=900, env=env
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(command)}: {exc}"
        output += done.stdout[-2000:] + done.stderr[-2000:]
        if command == apt and done.returncode == 0:
            break
    return output


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium (Playwright's own browser download cannot work here). Installed when
    missing; when it cannot be had the browser tests fail, never skip."""
    if not CHROMIUM.exists():
        output = _install_chromium()
        if not CHROMIUM.exists():
            pytest.fail(
                f"{CHROMIUM} is missing and `apt-get install chromium` did not provide it "
                f"(run it as root, or give this user passwordless sudo):\n{output}"
            )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses root
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=args
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, ui_url: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) whose console errors fail the test: a script
    error, or anything the Content-Security-Policy refused, shows there."""
    context = browser.new_context(
        base_url=ui_url, viewport={"width": 1440, "height": 1000}, accept_downloads=False
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append(f"a dialog opened: {d.message}"))
    page.console_errors = errors
    yield page
    context.close()
    # A 404 thumbnail or a 4xx the test provoked on purpose is logged as a failed resource.
    real = [e for e in errors if not re.search(r"status of 4\d\d", e)]
    assert not real, f"browser console errors: {real}"


def shot(page: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot in the test's folder, copied to /tmp/ui-shots/."""
    path = folder / f"{name}.png"
    # Lazy images load once scrolled to: scroll through, wait for them, then shoot.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=15_000)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def sign_in(page: Any, key: str, then: str = "/ui") -> None:
    page.goto(f"/ui/signin?next={then}")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}")


@contextmanager
def session_client(url: str, key: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the dashboard as a browser is: the sign-in form's token,
    this server's Origin, and the session cookie it answers with."""
    with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as client:
        form = client.get("/ui/signin")
        token = csrf_of(form.text)
        data = {"api_key": key, "csrf_token": token, "next": "/ui"}
        answer = client.post("/ui/signin", data=data)
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


from tests.app.inference.conftest import Trained, image_model, text_model  # noqa: E402

__all__ = ["Trained", "image_model", "text_model"]
