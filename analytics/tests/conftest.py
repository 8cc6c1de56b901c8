import pytest
from asgiref.sync import sync_to_async
from django.db import connections


@pytest.fixture
async def close_thread_connections():
    """Async tests reach the ORM from asgiref's worker thread, which no request
    cycle cleans up; close its connections so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()
