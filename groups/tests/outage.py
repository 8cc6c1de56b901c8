"""A real database outage for one test: the ORM's connection cannot reach the database.

On PostgreSQL the connection is pointed at a closed port (connect is refused,
psycopg raises, Django answers OperationalError). SQLite has no server to
stop, and pytest-django's in-memory test database dies with its last
connection, so there every query of this thread is refused with the
OperationalError SQLite raises for a database it cannot open.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from django.db import OperationalError, connection


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database_away() -> Iterator[None]:
    """Until the block ends, every query of this thread fails as in an outage."""
    if connection.vendor == "sqlite":
        def refuse(execute, sql, params, many, context):
            raise OperationalError("unable to open database file")

        with connection.execute_wrapper(refuse):
            yield
        return
    settings = connection.settings_dict
    host, port = settings["HOST"], settings["PORT"]
    connection.close()
    settings["HOST"], settings["PORT"] = "127.0.0.1", closed_port()
    try:
        yield
    finally:
        connection.close()
        settings["HOST"], settings["PORT"] = host, port
