"""One poller per token: a second holder is refused until the first lets go or dies."""

from __future__ import annotations

import pytest

from bots.locks import AdvisoryLocks, FileLocks, advisory_key, get_locks
from bots.tests.runtime_support import eventually, on_postgresql, postgres_only

BOT = 7_000_000_001
OTHER_BOT = 7_000_000_002


async def test_a_file_lock_has_one_holder_at_a_time(tmp_path):
    first, second = FileLocks(tmp_path), FileLocks(tmp_path)

    assert await first.acquire(BOT)
    # It should refuse the second holder, but not for another bot.
    assert not await second.acquire(BOT)
    assert await second.acquire(OTHER_BOT)
    # Acquiring again is a no-op for the holder.
    assert await first.acquire(BOT)

    await first.release(BOT)
    assert await second.acquire(BOT)
    await first.close()
    await second.close()


async def test_closing_file_locks_hands_every_bot_over(tmp_path):
    first, second = FileLocks(tmp_path), FileLocks(tmp_path)
    assert await first.acquire(BOT) and await first.acquire(OTHER_BOT)
    await first.close()

    assert await second.acquire(BOT) and await second.acquire(OTHER_BOT)
    await second.close()


def test_advisory_keys_are_stable_signed_64_bit_and_distinct():
    assert advisory_key(BOT) == advisory_key(BOT)
    assert advisory_key(BOT) != advisory_key(OTHER_BOT)
    assert -(2**63) <= advisory_key(BOT) < 2**63


@pytest.mark.django_db
def test_it_picks_the_lock_kind_of_the_database():
    expected = AdvisoryLocks if on_postgresql() else FileLocks
    assert isinstance(get_locks(), expected)


@postgres_only
@pytest.mark.django_db(transaction=True)
async def test_an_advisory_lock_fails_over_when_its_connection_dies():
    first, second = AdvisoryLocks(), AdvisoryLocks()
    try:
        assert await first.acquire(BOT)
        assert not await second.acquire(BOT)
        assert await first.still_held()

        # A process that dies loses its connection; PostgreSQL frees its locks.
        await first._conn.close()
        assert not await first.still_held()
        # The server frees it once it sees the socket close; the next pass takes it.
        await eventually(lambda: second.acquire(BOT))
        assert not await first.acquire(BOT)
    finally:
        await first.close()
        await second.close()


@postgres_only
@pytest.mark.django_db(transaction=True)
async def test_an_advisory_lock_is_released_for_the_next_process():
    first, second = AdvisoryLocks(), AdvisoryLocks()
    try:
        assert await first.acquire(BOT)
        await first.release(BOT)
        assert await second.acquire(BOT)
    finally:
        await first.close()
        await second.close()
