"""The update journal: what a restart must handle, in order, and nothing else."""

from __future__ import annotations

import json

from bots.journal import UpdateJournal


def update(update_id: int) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "text": "hi"}}


def test_it_hands_back_pending_updates_in_arrival_order_after_a_restart(tmp_path):
    journal = UpdateJournal(tmp_path / "bot.jsonl")
    assert journal.open() == []
    journal.append([update(7), update(5), update(9)], batch=[5, 6, 7, 8, 9])
    journal.done([5])
    # A kill -9: no close(), no compaction.
    again = UpdateJournal(tmp_path / "bot.jsonl")
    # The unfinished ones come back in the order they arrived...
    assert [u["update_id"] for u in again.open()] == [7, 9]
    # ...and the last batch's ids, which Telegram may send again.
    assert again.last_batch == (5, 6, 7, 8, 9)


def test_it_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "bot.jsonl"
    journal = UpdateJournal(path)
    journal.open()
    journal.append([update(1), update(2)])
    with path.open("ab") as file:
        file.write(b'{"u": {"update_id": 3, "mess')  # the process died mid-write
    assert [u["update_id"] for u in UpdateJournal(path).open()] == [1, 2]


def test_done_marks_survive_and_unknown_ids_are_ignored(tmp_path):
    path = tmp_path / "bot.jsonl"
    journal = UpdateJournal(path)
    journal.open()
    journal.append([update(1), update(2)], batch=[1, 2])
    journal.done([1, 99])
    assert journal.pending == 1
    assert [u["update_id"] for u in UpdateJournal(path).open()] == [2]


def test_it_keeps_the_file_small(tmp_path):
    path = tmp_path / "bot.jsonl"
    journal = UpdateJournal(path)
    journal.open()
    for start in range(0, 3_000, 100):
        batch = [update(i) for i in range(start, start + 100)]
        journal.append(batch, batch=[u["update_id"] for u in batch])
        journal.done(u["update_id"] for u in batch)
    journal.append([update(5_000)], batch=[5_000])
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    # Emptied journals start afresh: a few lines, not thousands.
    assert len(lines) < 1_100
    again = UpdateJournal(path)
    assert [u["update_id"] for u in again.open()] == [5_000]
    assert again.last_batch == (5_000,)


def test_a_lone_surrogate_from_telegram_is_written_and_read_back(tmp_path):
    path = tmp_path / "bot.jsonl"
    journal = UpdateJournal(path)
    journal.open()
    odd = {"update_id": 1, "message": {"text": "\ud800 broken"}}
    journal.append([odd])
    assert UpdateJournal(path).open() == [odd]


def test_compaction_costs_in_proportion_to_what_died_not_to_the_backlog(tmp_path):
    """A large backlog handled one update at a time is not rewritten per done mark
    (a fixed "every N lines" rewrote all 20,000 pending updates after each one),
    and the file never holds more than a bounded multiple of its live lines."""
    path = tmp_path / "bot.jsonl"
    journal = UpdateJournal(path)
    journal.open()
    backlog = 20_000
    for start in range(0, backlog, 100):
        batch = [update(i) for i in range(start, start + 100)]
        journal.append(batch, batch=[u["update_id"] for u in batch])
    rewrites, inode = 0, path.stat().st_ino
    for update_id in range(backlog):
        journal.done([update_id])
        # A rewrite replaces the file (os.replace): a new inode.
        if path.stat().st_ino != inode:
            rewrites, inode = rewrites + 1, path.stat().st_ino
            # Each one came after dead lines outnumbered the live ones twice over:
            # the backlog halves between rewrites (then the small-file floor).
            assert rewrites <= 12
        live = journal.pending + 1  # pending updates and the last batch's ids
        assert journal.lines <= 3 * live + 1_000, (update_id, journal.lines)
    assert rewrites >= 1
    lines = path.read_bytes().splitlines()
    assert len(lines) == journal.lines <= 1_001
    again = UpdateJournal(path)
    assert again.open() == []
    assert again.last_batch == tuple(range(backlog - 100, backlog))


def test_a_backlog_survives_compaction_in_order(tmp_path):
    path = tmp_path / "bot.jsonl"
    journal = UpdateJournal(path)
    journal.open()
    for start in range(0, 6_000, 100):
        batch = [update(i) for i in range(start, start + 100)]
        journal.append(batch, batch=[u["update_id"] for u in batch])
    # Handle all but every tenth, 50 at a time: the file is rewritten on the way.
    inodes = {path.stat().st_ino}
    handled = [i for i in range(6_000) if i % 10]
    for start in range(0, len(handled), 50):
        journal.done(handled[start:start + 50])
        inodes.add(path.stat().st_ino)
    assert len(inodes) > 1
    assert len(path.read_bytes().splitlines()) == journal.lines
    assert [u["update_id"] for u in UpdateJournal(path).open()] == list(range(0, 6_000, 10))
