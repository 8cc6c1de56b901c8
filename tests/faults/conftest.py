"""Fixtures of the fault suite: a migrated cluster template, and a `world` per test."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from bots.emulator import TelegramEmulator
from bots.emulator.scene import make_scene
from bots.tests.runtime_support import MANAGE, child_env
from tests.faults.harness import FaultWorld, forget_database, register_database
from tests.faults.servers import (
    PostgresCluster,
    postgres_available,
    postgres_cluster,
    redis_available,
    redis_server,
)

_aliases = itertools.count(1)


def _why_not() -> str | None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "fault suite: runs on the PostgreSQL + Redis pass (DATABASE_URL is not PostgreSQL)"
    return postgres_available() or redis_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    reason = None
    for item in items:
        if here not in Path(item.fspath).parents:
            continue
        item.add_marker(pytest.mark.faults)
        reason = reason or _why_not()
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def cluster_template() -> Iterator[Path]:
    """A stopped cluster's data directory with database `nezuko` migrated, copied per test.

    `manage.py migrate` runs once per session in a child process; copying the
    directory costs a fraction of a second, so every test gets a cluster of its
    own that it may stop and start without touching another test's.
    """
    cluster = PostgresCluster.create()
    try:
        cluster.start()
        cluster.psql("CREATE DATABASE nezuko")
        migrate = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [sys.executable, MANAGE, "migrate", "--noinput", "-v0"],
            env=child_env(DATABASE_URL=cluster.url(), REDIS_URL="", LOG_LEVEL="WARNING"),
            capture_output=True, text=True, timeout=300,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        cluster.stop("fast")
        yield cluster.data
    finally:
        cluster.destroy()


@pytest.fixture
async def world(cluster_template: Path, django_db_blocker: Any) -> AsyncIterator[FaultWorld]:
    """Emulator (flood limits on), cluster, redis-server, the seeded scene; runbot not started."""
    emu = TelegramEmulator()
    await emu.start()
    alias = f"faults{next(_aliases)}"
    try:
        with postgres_cluster(template=cluster_template) as cluster, redis_server() as redis:
            register_database(alias, cluster.url())
            scene = make_scene(emu)
            fault_world = FaultWorld(emu, scene, cluster, redis, alias)
            with django_db_blocker.unblock():
                await sync_to_async(fault_world.seed)()
                emu.flood_limits = True
                try:
                    yield fault_world
                finally:
                    await fault_world.close()
                    # Kept for a failing run's report: runbot's own account of what it did.
                    log_path = os.environ.get("NEZUKO_FAULTS_LOG")
                    if log_path:
                        with Path(log_path).open("a") as out:  # noqa: ASYNC230 - teardown
                            out.write(fault_world.runbot.log())
                    await sync_to_async(forget_database)(alias)
    finally:
        await emu.stop()
