"""Fixtures for the dashboard's browser tests.

The server under test is already running (run.sh starts it):

    DELEGA_URL      the server, e.g. http://127.0.0.1:41234   (required)
    DELEGA_TOKEN    its project token, dlp_…                    (required)
    DELEGA_UI_URL   where the dashboard is loaded from; unset means the
                    server itself at DELEGA_URL + "/" (how CI runs once
                    the binary embeds the assets)
    CHROMIUM        the browser binary (default /usr/bin/chromium)
    ARTIFACTS_DIR   screenshots of failures (default tests/browser/artifacts)
    SCREENSHOTS_DIR README screenshots (default docs/screenshots)
"""

import itertools
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SERVER = os.environ["DELEGA_URL"].rstrip("/")
TOKEN = os.environ["DELEGA_TOKEN"]
UI = os.environ.get("DELEGA_UI_URL") or SERVER + "/"
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", HERE / "artifacts"))
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", ROOT / "docs" / "screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# Every credential the tests hand out, to check that none leaks into a URL.
SECRETS = {TOKEN}
SECRET_PATTERN = re.compile(r"(dlg|dlp)_[A-Za-z0-9_-]{20,}|whsec_")

_names = itertools.count(1)
RUN = time.strftime("%H%M%S")


def unique(prefix):
    """A fresh agent name / task title for this test run."""
    return f"{prefix}-{RUN}-{next(_names)}"


class ApiFailed(Exception):
    def __init__(self, status, body):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class Rest:
    """The REST API, as the agents in a test would call it."""

    def call(self, method, path, body=None, cred=TOKEN):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(SERVER + "/api" + path, data=data, method=method)
        if cred.startswith("dlg_"):
            req.add_header("X-Agent-Key", cred)
        else:
            req.add_header("Authorization", f"Bearer {cred}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise ApiFailed(e.code, e.read().decode()) from None
        return json.loads(text) if text else None

    def agent(self, prefix="agent", role="worker", exact=False, **extra):
        """Creates an agent named `prefix-<run>-<n>` (or just `prefix` with
        exact=True, when that name is still free); returns it with its key."""
        try:
            a = self.call("POST", "/agents", {"name": prefix if exact else unique(prefix), "role": role, **extra})
        except ApiFailed as e:
            if not (exact and e.status == 409):
                raise
            a = self.call("POST", "/agents", {"name": unique(prefix), "role": role, **extra})
        SECRETS.add(a["api_key"])
        return a

    def task(self, content, cred=TOKEN, **fields):
        return self.call("POST", "/tasks", {"content": content, **fields}, cred=cred)


@pytest.fixture(scope="session")
def rest():
    return Rest()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--disable-dev-shm-usage", "--disable-gpu"])
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


class Recorder:
    """Every request the page made: method, URL and headers."""

    def __init__(self):
        self.requests = []
        self.page_urls = []

    def on_request(self, request):
        self.requests.append((request.method, request.url, request.headers))

    def api(self, method=None, path_prefix=""):
        out = []
        for m, url, headers in self.requests:
            p = url.split("://", 1)[-1]
            p = p[p.find("/"):]
            if p.startswith("/api" + path_prefix) and (method is None or m == method):
                out.append((m, p, headers))
        return out


def _make_page(browser, request, viewport):
    context = browser.new_context(viewport=viewport)
    origin = re.match(r"https?://[^/]+", UI).group(0)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page = context.new_page()
    rec = Recorder()
    page.on("request", rec.on_request)
    page.on("framenavigated", lambda f: rec.page_urls.append(f.url) if f == page.main_frame else None)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.recorder = rec
    page.js_errors = errors
    page.set_default_timeout(10_000)
    yield page
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.requests.txt").write_text(
                "\n".join(f"{m} {u}" for m, u, _ in rec.requests))
        except Exception as e:  # the page may be gone; the test's own error matters more
            print(f"could not save a screenshot: {e}")
    # Whatever the test did: no credential in any URL the page loaded or
    # requested (request lines and the address bar), and no cookies.
    leaked = [u for _, u, _ in rec.requests if SECRET_PATTERN.search(u) or any(s in u for s in SECRETS)]
    leaked += [u for u in rec.page_urls if SECRET_PATTERN.search(u) or any(s in u for s in SECRETS)]
    cookies = context.cookies()
    context.close()
    assert not leaked, f"credential in a URL: {leaked}"
    assert not cookies, f"the dashboard set cookies: {cookies}"
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser, request):
    yield from _make_page(browser, request, {"width": 1280, "height": 800})


@pytest.fixture
def phone(browser, request):
    yield from _make_page(browser, request, {"width": 390, "height": 844})


def sign_in(page, cred=TOKEN, url=None):
    """Opens the dashboard and signs in; waits for the live stream."""
    page.goto(url or UI)
    page.get_by_label("Agent key or project token").fill(cred)
    page.get_by_role("button", name="Sign in").click()
    page.locator('[data-testid="who"]').wait_for()
    page.locator('.live[data-state="live"]').wait_for()


def go(page, route):
    """Client-side navigation (no reload): sets the URL fragment."""
    page.evaluate("r => { location.hash = r; }", route)


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def settle(page):
    """Waits until the view has loaded everything it asked for. (Playwright's
    "networkidle" never comes: the live event stream stays open.)"""
    from playwright.sync_api import expect
    expect(page.locator("main", has_text="Loading…")).to_have_count(0)
    expect(page.locator("main", has_text="Working…")).to_have_count(0)
    page.wait_for_timeout(200)
