"""A small HTTP client for the web tests: stdlib only, JSON in, status and JSON out."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode


def get(base: str, path: str, token: str | None = None, **query: Any) -> tuple[int, Any]:
    """GET ``base + path`` with ``query`` (None values left out); (status, decoded JSON body)."""
    params = {k: v for k, v in query.items() if v is not None}
    url = base + path + ("?" + urlencode(params) if params else "")
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if body else None


def get_page(base: str, path: str, token: str | None = None) -> tuple[int, str, str]:
    """GET a web page (redirects followed), signed in with ``token``'s cookie; (status, final URL, HTML)."""
    request = urllib.request.Request(base + path)
    if token is not None:
        request.add_header("Cookie", f"agno_storage_token={token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.url, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.url, exc.read().decode("utf-8")


def wait_until_up(base: str, proc: subprocess.Popen[Any], within: float = 30.0) -> None:
    """Wait until the server ``proc`` runs at ``base`` answers ``/healthz`` with 200; fail if it exits or takes
    longer than ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            if get(base, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
