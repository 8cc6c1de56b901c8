"""An ASGI app that reads the request and answers 200 "ok": the bound for a webhook figure.

    daphne benchmarks.noop_asgi:application

benchmarks/scale.py serves it with the same daphne and posts to it with the same
client as the webhook route, so the route's figure is printed as a ratio to
what daphne and the client alone allow on the same machine in the same run.
"""

from __future__ import annotations


async def application(scope, receive, send) -> None:  # noqa: ANN001
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
