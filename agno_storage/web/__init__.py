"""``agno-storage serve``: a read-only HTTP API and web page over every sessions table of a database.

Needs the ``[web]`` extra (Starlette, uvicorn). :func:`~agno_storage.web.app.create_app`
builds the ASGI application over a :class:`~agno_storage.web.source.Source`;
see docs/web.md.
"""
