"""The web page in a real headless browser (Debian's chromium, driven by Playwright; no browser download).

The page is opened over a Go-written fixture and over PostgreSQL: the test
lists sessions, filters them, opens a conversation, searches, looks at the
usage charts, and checks that the screenshots of each view are not blank.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage import Mode
from agno_storage.web.app import create_app
from agno_storage.web.auth import parse_tokens
from agno_storage.web.run import serving
from agno_storage.web.source import open_source
from tests.support import require
from tests.test_web_api import FIXTURES, HAS_USAGE, fill

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(
        Path(CHROMIUM).exists() or shutil.which("chromium") is not None,
        "Debian's chromium is not installed (apt-get install chromium)",
        "AGNO_STORAGE_FORBID_SKIPS",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def not_blank(png: bytes) -> None:
    """The screenshot has content: many colours, and ink on a good share of it."""
    import io

    import numpy as np
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")[:, :, :3]
    rgb = (pixels.reshape(-1, 3) * 255).astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    colours = len(np.unique(packed))
    background = (packed == packed[0]).mean()
    assert colours > 50, f"only {colours} colours: a blank page?"
    assert background < 0.97, f"{background:.1%} of the page is one colour"


@pytest.fixture(params=["go-fixture", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A served database, what to look for in it, and the path of its session list."""
    if request.param == "go-fixture":
        db = tmp_path / "go_agent_conversation.db"
        shutil.copyfile(FIXTURES / "go_agent_conversation.db", db)
        source = open_source(str(db))
        facts = {
            "table": "agent_sessions",
            "user": "user-1",
            "session": "agent-existing",
            "said": "first question <&>",
            "search": "frage",
            "tool": False,
        }
    else:
        from agno_storage import PostgresStorage

        server = request.getfixturevalue("pg_server")
        table = f"web_browser_{tmp_path.name[-12:].replace('-', '_')}"
        store = PostgresStorage(table, db_url=server.dsn, mode=Mode.AGENT)
        fill(store, 12)
        request.addfinalizer(lambda: (store.drop(), store.close()))
        source = open_source(server.dsn)
        facts = {
            "table": table,
            "user": "user-3",
            "session": "s-005",
            "said": "question about zebras in s-005",
            "search": "zebras stripes",
            "tool": True,
        }
    try:
        with serving(create_app(source)) as base:
            yield {"base": base, **facts}
    finally:
        source.close()


def test_the_page_lists_filters_opens_searches_and_charts(browser: Any, site: dict[str, Any], tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    # The pages' Content-Security-Policy lets their own script and style run: the browser refuses nothing.
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    base, table = site["base"], site["table"]
    shots = tmp_path / "shots"
    shots.mkdir()

    # The session list, then filtered by user through the form.
    page.goto(f"{base}/?table={table}")
    assert page.locator("table.sessions tbody tr").count() >= 1
    not_blank(page.screenshot(path=str(shots / "list.png"), full_page=True))
    page.fill("#user_id", site["user"])
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    users = page.locator("table.sessions tbody tr td:nth-child(2)").all_inner_texts()
    assert users and set(users) == {site["user"]}
    assert f"user_id={site['user']}" in page.url

    # One conversation: the user's message and the assistant's answer, in order.
    with page.expect_navigation():
        page.click(f"a.session-link:text-is('{site['session']}')")
    page.wait_for_selector("#conversation .message")
    assert page.locator(".message.role-user .content").first.inner_text() == site["said"]
    assert page.locator(".message.role-assistant").count() >= 1
    if site["tool"]:
        assert page.locator(".tool-call b").first.inner_text() == "lookup"
        assert page.locator(".message.role-tool .content").first.inner_text() == "zebras have stripes"
    not_blank(page.screenshot(path=str(shots / "conversation.png"), full_page=True))

    # Search from the nav; the hits' matched words are highlighted.
    page.click("header nav a:text('Search')")
    page.fill("#q", site["search"])
    with page.expect_navigation():
        page.press("#q", "Enter")
    page.wait_for_selector("ol.hits li.hit")
    marked = {m.lower() for m in page.locator("li.hit mark").all_inner_texts()}
    assert marked and marked <= set(site["search"].lower().split())
    not_blank(page.screenshot(path=str(shots / "search.png"), full_page=True))
    page.locator("a.hit-link").first.click()
    page.wait_for_selector("#conversation .message")

    # Usage per day and per entity, as bar charts.
    page.goto(f"{base}/usage?table={table}")
    if not HAS_USAGE:
        assert "has no agno_storage.usage" in page.content()
        page.close()
        return
    assert page.locator("svg#usage-by-day rect").count() >= 1
    assert page.locator("svg#usage-by-entity rect").count() >= 1
    not_blank(page.screenshot(path=str(shots / "usage.png"), full_page=True))
    assert refused == []
    page.close()


def test_with_tokens_the_page_asks_for_one(browser: Any, tmp_path: Path) -> None:
    token = "browser-token-0123456789"
    source = open_source(str(FIXTURES / "go_agent_conversation.db"))
    try:
        with serving(create_app(source, parse_tokens(f"{token} user-2\n"))) as base:
            page = browser.new_page()
            page.goto(base + "/")
            assert page.url.startswith(base + "/login")
            page.fill("#token", "not-the-token-0123456789")
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert page.locator(".error").count() == 1
            page.fill("#token", token)
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert page.url.rstrip("/") == base
            # user-2 owns no session of this file: none of user-1's shows.
            assert page.locator("table.sessions tbody tr").count() == 0
            assert "No session matches." in page.content()
            page.goto(base + "/sessions/agent-existing?table=agent_sessions")
            assert "first question" not in page.content()
            with page.expect_navigation():
                page.click("form.sign-out button")
            assert page.url.startswith(base + "/login")
            page.goto(base + "/")
            assert page.url.startswith(base + "/login")  # the cookie is gone
            page.close()
    finally:
        source.close()
