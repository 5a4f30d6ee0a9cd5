"""Signing in to and out of ``agno-storage serve``'s web page: the cookie, its lifetime, and who may set it."""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path

from agno_storage.web.auth import COOKIE, COOKIE_MAX_AGE, parse_tokens
from tests.test_web_api import Serve
from tests.test_web_hardening import fetch

TOKEN = "all-users-token-0123456789"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def cookie_of(headers: dict[str, str]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(headers.get("set-cookie", ""))
    return jar


def test_the_sign_in_cookie_expires(one_session: Path, serve: Serve) -> None:
    """The cookie holds a token: a browser kept it (and sent it) for ever, closed or not."""
    with serve(str(one_session), parse_tokens(f"{TOKEN} *\n")) as base:
        status, headers, _ = fetch(base, "/login", method="POST", headers=FORM, data=f"token={TOKEN}")
        assert status == 303
        morsel = cookie_of(headers)[COOKIE]
        assert morsel.value == TOKEN and morsel["httponly"] and morsel["samesite"] == "strict"
        assert int(morsel["max-age"]) == COOKIE_MAX_AGE
        assert 0 < COOKIE_MAX_AGE <= 24 * 3600


def test_signing_out_clears_the_cookie_and_only_from_the_own_page(one_session: Path, serve: Serve) -> None:
    signed_in = {"Cookie": f"{COOKIE}={TOKEN}"}
    with serve(str(one_session), parse_tokens(f"{TOKEN} *\n")) as base:
        for path in ("/", "/search", "/usage", "/sessions/a-1"):
            status, _, html = fetch(base, path, headers=signed_in)
            assert status == 200 and '<form class="sign-out" method="post" action="/logout">' in html, path
        # Not signed in through the page (a token sent as Bearer): nothing to sign out of.
        status, _, html = fetch(base, "/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and 'action="/logout"' not in html

        for cross in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            status, headers, _ = fetch(base, "/logout", method="POST", headers={**signed_in, **cross}, data="")
            assert status == 403 and "set-cookie" not in headers, cross
        assert fetch(base, "/logout", headers=signed_in)[0] == 405  # a link or an <img> signs no one out

        status, headers, _ = fetch(
            base, "/logout", method="POST", headers={**signed_in, "Sec-Fetch-Site": "same-origin"}, data=""
        )
        assert status == 303 and headers["location"] == "/login"
        morsel = cookie_of(headers)[COOKIE]
        assert morsel.value == "" and int(morsel["max-age"]) == 0 and morsel["httponly"]
