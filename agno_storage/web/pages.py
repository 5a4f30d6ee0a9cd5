"""The web page: server-rendered HTML over the same reads as the API, plus a little script.

Views: the session list with filters (``/``), one conversation
(``/sessions/{id}``), search with highlighted hits (``/search``) and usage
per day and per entity as bar charts (``/usage``). Every value shown is
escaped; the page has no build step. With tokens configured, ``/login``
takes a token and keeps it in an HttpOnly cookie for :data:`COOKIE_MAX_AGE`
seconds, and ``/logout`` (the page's sign-out button) clears it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import anyio
import attrs
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from agno_storage import codec_exact
from agno_storage.errors import StorageError
from agno_storage.web import limits
from agno_storage.web.app import (
    SESSIONS_PARAMS,
    Server,
    _server,
    cursor_param,
    filters_from,
    limit_param,
    params,
    retried,
)
from agno_storage.web.auth import COOKIE, COOKIE_MAX_AGE, Principal, bearer
from agno_storage.web.errors import HttpError
from agno_storage.web.source import Tables
from agno_storage.web.table_reader import encode_cursor


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(ts: int | None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def link(path: str, **query: str | None) -> str:
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def layout(
    title: str, body: str, *, active: str = "", table: str | None = None, sign_out: bool = False
) -> HTMLResponse:
    """A page around ``body``; ``sign_out`` adds the button that signs the browser out (see :func:`signed_in`)."""
    nav = "".join(
        f'<a href="{esc(link(path, table=table))}" class="{"active" if name == active else ""}">{name.title()}</a>'
        for name, path in (("sessions", "/"), ("search", "/search"), ("usage", "/usage"))
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · agno-storage</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head><body>
<header><span class="brand">agno-storage</span><nav>{nav}</nav>{SIGN_OUT if sign_out else ""}</header>
<main>
<h1>{esc(title)}</h1>
{body}
</main></body></html>"""
    return HTMLResponse(page)


#: The sign-out button: a form posted to ``/logout`` (a link could be followed by any page's ``<img>``).
SIGN_OUT = '<form class="sign-out" method="post" action="/logout"><button type="submit">Sign out</button></form>'


def signed_in(server: Server, request: Request) -> bool:
    """Whether the page was asked for with the sign-in form's cookie (not a Bearer token): it can be cleared."""
    return (
        server.tokens is not None and bearer(request.headers.get("authorization")) is None and COOKIE in request.cookies
    )


def table_picker(server: Server, current: str | None, who: Principal) -> str:
    """The table menu; row counts (every user's) only for a caller who may read every user's sessions, and only
    if they are counted before the request's deadline (a page is not lost for want of them)."""
    listing = _listing(server, fresh=False, count_rows=who.user_id is None)
    if current is not None and current not in {t.name for t in listing.readable}:
        listing = _listing(server, fresh=True, count_rows=who.user_id is None)  # made since the list was read
    options = "".join(
        f'<option value="{esc(t.name)}"{" selected" if t.name == current else ""}>'
        f"{esc(t.name)} ({esc(t.mode.value)}{'' if t.rows is None else f', {t.rows} rows'})</option>"
        for t in listing.readable
    )
    menu = f'<label>Table <select name="table" id="table" data-autosubmit>{options}</select></label>'
    return menu + unreadable_note(listing)


def _listing(server: Server, *, fresh: bool, count_rows: bool) -> Tables:
    """:meth:`Server.listing`; with ``count_rows``, the list without counts if counting stopped at the deadline."""
    if count_rows:
        try:
            return server.listing(fresh=fresh, count_rows=True)
        except (limits.TooSlow, StorageError):
            if not limits.past_deadline():
                raise
            # Past the deadline no statement may run: the list as this request read it to find its table, however
            # long the count took (longer than the list is kept, with the default timeout).
            return server.listing(fresh=fresh, as_read=True)
    return server.listing(fresh=fresh)  # read for the request's table already: no statement runs


def unreadable_note(listing: Tables) -> str:
    """Why a sessions table of the database is not in the menu, if one is not (else nothing)."""
    if not listing.unreadable:
        return ""
    reasons = "; ".join(esc(why) for _, why in listing.unreadable)
    return f'<p class="note" id="unreadable-tables">Sessions tables this server cannot read: {reasons}.</p>'


def current_table(server: Server, asked: str | None) -> str | None:
    """The table asked for, else the first one a reader is made for (never one the server cannot read)."""
    if asked:
        return asked
    tables = server.tables()
    return tables[0].name if tables else None


def error_page(status: int, message: str) -> Response:
    """An error of a page view, as a page (the API's errors are JSON)."""
    response = layout("Something is wrong" if status >= 500 else "Not here", f'<p class="error">{esc(message)}</p>')
    response.status_code = status
    return response


def sign_in_redirect(request: Request) -> Response:
    # The path as the browser sent it, still percent-encoded: the decoded one (request.url.path) lost a level of
    # encoding, and after signing in the link to session "50%41" led to session "50A".
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(request.url.path)
    return RedirectResponse(link("/login", next=path + ("?" + request.url.query if request.url.query else "")), 303)


# --- views --------------------------------------------------------------------


def sessions_view(request: Request) -> Response:
    server = _server(request)
    who = server.principal(request, page=True)
    # An empty form field means "any" here (in the API, user_id= asks for sessions with no user).
    query = {k: v for k, v in params(request, SESSIONS_PARAMS).items() if v != ""}
    table = current_table(server, query.get("table"))
    if table is None:
        empty = '<p class="empty">This database has no sessions table.</p>'
        return layout(
            "Sessions",
            empty + unreadable_note(server.listing()),
            active="sessions",
            sign_out=signed_in(server, request),
        )
    reader = server.reader(table)
    limit = limit_param(query.get("limit"))
    sessions, after = server.page(reader, who, filters_from(query), cursor_param(query.get("cursor")), limit)
    entity = reader.store.spec.entity_column
    fields = "".join(
        f'<label>{label} <input name="{name}" id="{name}" value="{esc(query.get(name))}" placeholder="{hint}"></label>'
        for name, label, hint in (
            ("user_id", "User", "any"),
            ("entity_id", entity, "any"),
            ("since", "Since", "2024-01-31 or Unix seconds"),
            ("until", "Until", "2024-02-01"),
        )
    )
    form = f'<form class="filters" method="get" action="/">{table_picker(server, table, who)}{fields}<button type="submit">Filter</button></form>'
    rows = "".join(
        "<tr>"
        f'<td><a class="session-link" href="{esc(link("/sessions/" + quote(s.session_id, safe=""), table=table))}">{esc(s.session_id)}</a></td>'
        f"<td>{esc(s.user_id or '-')}</td><td>{esc(s.entity_id or '-')}</td>"
        f"<td>{when(s.created_at)}</td><td>{when(s.updated_at)}</td></tr>"
        for s in sessions
    )
    if sessions:
        listing = (
            f'<table class="sessions"><thead><tr><th>session_id</th><th>user_id</th><th>{esc(entity)}</th>'
            f"<th>created (UTC)</th><th>updated (UTC)</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        listing = '<p class="empty">No session matches.</p>'
    more = ""
    if after is not None:
        keep = {k: v for k, v in query.items() if k != "cursor"}
        more = f'<p><a id="next-page" href="{esc(link("/", **keep, cursor=encode_cursor(after)))}">Next page →</a></p>'
    return layout(
        "Sessions", form + listing + more, active="sessions", table=table, sign_out=signed_in(server, request)
    )


def _message_html(message: dict[str, Any]) -> str:
    role = str(message.get("role") or "?")
    who = role + (f" · {message['member']}" if message.get("member") else "")
    if message.get("name"):
        who += f" · {message['name']}"
    parts = [f'<div class="who">{esc(who)}<span class="time">{when(message.get("created_at"))}</span></div>']
    if message.get("content") is not None:
        parts.append(f'<div class="content">{esc(message["content"])}</div>')
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        name = (
            function.get("name") if isinstance(function, dict) else call.get("name") if isinstance(call, dict) else None
        )
        args = function.get("arguments") if isinstance(function, dict) else call
        parts.append(
            f'<div class="tool-call">tool call <b>{esc(name or "?")}</b><pre>{esc(args if isinstance(args, str) else json.dumps(args, ensure_ascii=False))}</pre></div>'
        )
    role_class = re.sub(r"[^a-z]", "", role.lower()) or "other"
    return f'<article class="message role-{role_class}">{"".join(parts)}</article>'


def session_view(request: Request) -> Response:
    from agno_storage.web import extras

    server = _server(request)
    who = server.principal(request, page=True)
    query = params(request, ("table", "user_id"))
    table = current_table(server, query.get("table"))
    if table is None:
        raise HttpError(404, "not_found", "this database has no sessions table")
    reader = server.reader(table)
    session_id = request.path_params["session_id"]
    # A search hit's link names its user: a hit in another user's run under an owned session (a stray, which
    # the owner's conversation leaves out) is shown as that user has it. An empty field means any user.
    user = extras.scoped_user(who, query.get("user_id") or None)
    session = server.read(reader, lambda: reader.get(session_id, user))
    try:
        messages = extras.history_of(server, reader, user, session_id)
        conversation = server.conversation_converter.unstructure(messages) if messages else []
        talk = (
            "".join(_message_html(m) for m in conversation)
            or '<p class="empty">This session holds no conversation.</p>'
        )
    except HttpError as exc:
        if exc.status == 404 and session is None:
            page = layout(
                "No such session",
                f'<p class="empty">No session {esc(session_id)!s} in {esc(table)}.</p>',
                table=table,
                sign_out=signed_in(server, request),
            )
            page.status_code = 404  # as the API answers for it
            return page
        if exc.status != 404:
            raise
        talk = f'<p class="empty">{esc(exc.message)}</p>'
    facts = ""
    raw = ""
    if session is not None:
        columns = attrs.asdict(session, recurse=False)  # JSON values already: not walked
        facts = "".join(
            f"<dt>{esc(k)}</dt><dd>{esc(when(v) if k in ('created_at', 'updated_at') else v if isinstance(v, str) or v is None else '…')}</dd>"
            for k, v in columns.items()
            if k in ("session_id", "user_id", "created_at", "updated_at", reader.store.spec.entity_column)
        )
        try:
            shown = codec_exact.with_stack(lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str), columns)
        except RecursionError:  # past what json writes (about 990 levels), as the API's too_deep
            shown = "(nested too deeply to show)"
        raw = f"<details><summary>All columns</summary><pre>{esc(shown)}</pre></details>"
    back = f'<p><a href="{esc(link("/", table=table))}">← Sessions</a></p>'
    if user is not None and who.user_id is None:
        everyone = link("/sessions/" + quote(session_id, safe=""), table=table)
        back += (
            f'<p class="note" id="user-scope">What user {esc(user)} has under this session id '
            f'(<a href="{esc(everyone)}">every user\'s</a>).</p>'
        )
    body = f'{back}<dl class="facts">{facts}</dl><section id="conversation" class="conversation">{talk}</section>{raw}'
    return layout(f"Session {session_id}", body, active="sessions", table=table, sign_out=signed_in(server, request))


def snippet_html(snippet: str, marks: Any) -> str:
    """A search snippet escaped, the matched words ``marks`` locates (``SearchHit.marks``) in ``<mark>``.

    Their brackets go; a bracket the text itself holds stays, as text.
    """
    out, last = [], 0
    for start, end in marks:
        out.append(esc(snippet[last : start - 1]))
        out.append(f"<mark>{esc(snippet[start:end])}</mark>")
        last = end + 1
    out.append(esc(snippet[last:]))
    return "".join(out)


def search_view(request: Request) -> Response:
    from agno_storage.web import extras

    server = _server(request)
    who = server.principal(request, page=True)
    query = params(request, ("table", "q", "user_id", "entity_id", "limit"))
    table = current_table(server, query.get("table"))
    text = query.get("q", "")
    form = (
        f'<form class="filters" method="get" action="/search">{table_picker(server, table, who)}'
        f'<label>Search <input type="search" name="q" id="q" value="{esc(text)}" placeholder="words said in a session" autofocus></label>'
        '<button type="submit">Search</button></form>'
    )
    results = ""
    if text.strip() and table is not None:
        reader = server.reader(table)
        hits = server.conversation_converter.unstructure(extras.search_hits(server, reader, who, query))
        items = "".join(
            f'<li class="hit"><a class="hit-link" href="{esc(hit_link(h, table))}">'
            f'{esc(h.get("session_id"))}</a> <span class="role">{esc((h.get("message") or {}).get("role") or "")}</span>'
            f'<div class="snippet">{snippet_html(str(h.get("snippet") or ""), h.get("marks") or ())}</div></li>'
            for h in hits
        )
        results = f'<ol class="hits">{items}</ol>' if hits else '<p class="empty">No hit.</p>'
    return layout("Search", form + results, active="search", table=table, sign_out=signed_in(server, request))


def hit_link(hit: dict[str, Any], table: str) -> str:
    """The page of a hit's session as the hit's user has it: a hit may be that user's run under another's session."""
    return link("/sessions/" + quote(str(hit.get("session_id")), safe=""), table=table, user_id=hit.get("user_id"))


def _bars(title: str, rows: Iterable[tuple[str, float]], unit: str, element_id: str) -> str:
    data = list(rows)
    if not data:
        return f'<h2>{esc(title)}</h2><p class="empty">Nothing to show.</p>'
    top = max(v for _, v in data) or 1
    bar_h, gap, label_w, width = 22, 6, 170, 640
    height = len(data) * (bar_h + gap)
    bars = []
    for i, (label, value) in enumerate(data):
        y = i * (bar_h + gap)
        w = max(1.0, (width - label_w - 90) * value / top)
        shown = f"{value:,.0f}"
        bars.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{esc(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3"><title>{esc(label)}: {shown} {esc(unit)}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{shown}</text>'
        )
    return (
        f'<h2>{esc(title)}</h2><svg id="{element_id}" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}">{"".join(bars)}</svg>'
    )


def usage_view(request: Request) -> Response:
    from agno_storage.web import extras

    server = _server(request)
    who = server.principal(request, page=True)
    query = params(request, ("table", "user_id", "entity_id", "since", "until"))
    table = current_table(server, query.get("table"))
    form = f'<form class="filters" method="get" action="/usage">{table_picker(server, table, who)}<button type="submit">Show</button></form>'
    if table is None:
        return layout("Usage", form, active="usage", sign_out=signed_in(server, request))
    reader = server.reader(table)
    body = extras.usage_body(server, reader, who, query)
    return layout("Usage", form + usage_charts(body), active="usage", table=table, sign_out=signed_in(server, request))


def usage_charts(body: Any) -> str:
    """Bar charts of tokens per day and per entity (runs where no writer kept tokens)."""
    rows = body.by_day + body.by_entity
    tokens = any(t.total_tokens is not None for t in rows)
    unit = "tokens" if tokens else "runs"

    def series(totals: Any) -> list[tuple[str, float]]:
        return [(t.key or "-", float((t.total_tokens or 0) if tokens else t.runs)) for t in totals]

    return _bars(f"{unit.title()} per day", series(body.by_day), unit, "usage-by-day") + _bars(
        f"{unit.title()} per entity", series(body.by_entity), unit, "usage-by-entity"
    )


# --- signing in ---------------------------------------------------------------


#: The most a sign-in form may send (a token is a line): the one request answered without a token.
LOGIN_BODY_LIMIT = 16 * 1024
#: Seconds a sign-in form's body may take to arrive (a client sending it a byte at a time held its connection).
LOGIN_BODY_TIMEOUT = 10.0


async def _small_body(request: Request) -> bytes:
    """The request's body, read up to :data:`LOGIN_BODY_LIMIT` bytes; HttpError 413 past it, 408 if it has not
    all come within :data:`LOGIN_BODY_TIMEOUT` seconds."""
    declared = request.headers.get("content-length", "")
    too_large = HttpError(413, "too_large", f"a sign-in form is at most {LOGIN_BODY_LIMIT:,} bytes")
    if declared.isascii() and declared.isdigit() and int(declared) > LOGIN_BODY_LIMIT:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(LOGIN_BODY_TIMEOUT):
            async for chunk in request.stream():
                size += len(chunk)
                if size > LOGIN_BODY_LIMIT:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise HttpError(408, "timeout", f"a sign-in form must arrive within {LOGIN_BODY_TIMEOUT:g} seconds") from None
    return b"".join(chunks)


#: ``Sec-Fetch-Site`` values of a form sent from this server's own page (or typed in: ``none``).
_OWN_FORM = frozenset({"same-origin", "none"})


def _from_own_page(request: Request) -> bool:
    """Whether a browser says the request comes from this server's own page, or says nothing of it.

    ``Sec-Fetch-Site`` where the browser sends it; else ``Origin``, whose
    host must be the one the request was sent to (``Host``, or what a
    reverse proxy passes on in ``X-Forwarded-Host`` or ``Forwarded``;
    default ports aside). A client that sends neither (not a browser
    posting another site's form) is let through.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in _OWN_FORM
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    default = {"http": ":80", "https": ":443"}.get(parts.scheme.lower(), "")

    def plain(host: str) -> str:  # "Host: example.com:443" names the same origin as "https://example.com"
        host = host.strip().strip('"').lower()
        return host[: -len(default)] if default and host.endswith(default) else host

    named = [h for value in request.headers.getlist("host") for h in value.split(",")]
    named += [h for value in request.headers.getlist("x-forwarded-host") for h in value.split(",")]
    for value in request.headers.getlist("forwarded"):  # RFC 7239: for=...;host=...;proto=..., ...
        named += [p.split("=", 1)[1] for p in re.split(r"[;,]", value) if p.strip().lower().startswith("host=")]
    return plain(parts.netloc) in {plain(h) for h in named}


async def login_view(request: Request) -> Response:
    server = _server(request)
    target = request.query_params.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    message = ""
    if request.method == "POST":
        if not _from_own_page(request):
            # Another site's page posting its own token here would sign the browser in as that token's user
            # (login CSRF).
            raise HttpError(403, "forbidden", "a sign-in form is taken only from this server's own page")
        form = parse_qs((await _small_body(request)).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        if server.tokens is None or server.check(request, server.tokens, token) is not None:
            response = RedirectResponse(target, 303)
            if server.tokens is not None:
                response.set_cookie(
                    COOKIE,
                    token,
                    max_age=COOKIE_MAX_AGE,
                    httponly=True,
                    samesite="strict",
                    secure=request.url.scheme == "https",
                )
            return response
        message = '<p class="error">That token is not valid.</p>'
    body = (
        f'{message}<form class="filters" method="post" action="{esc(link("/login", next=target))}">'
        '<label>Token <input type="password" name="token" id="token" autocomplete="current-password"></label>'
        '<button type="submit">Sign in</button></form>'
    )
    return layout("Sign in", body)


async def logout_view(request: Request) -> Response:
    """Clear the sign-in cookie and go to the sign-in form; 403 for a form another site's page posts."""
    if not _from_own_page(request):
        # Another site's page would sign the browser out behind its user's back.
        raise HttpError(403, "forbidden", "a sign-out form is taken only from this server's own page")
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def routes() -> list[Route]:
    return [
        Route("/", retried(sessions_view)),
        Route("/sessions/{session_id:path}", retried(session_view)),
        Route("/search", retried(search_view, expensive=True, page=True)),
        Route("/usage", retried(usage_view, expensive=True, page=True)),
        Route("/login", login_view, methods=["GET", "POST"]),
        Route("/logout", logout_view, methods=["POST"]),
    ]


__all__ = ["error_page", "routes", "sign_in_redirect", "snippet_html"]
