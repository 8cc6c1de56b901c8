"""The disk spool: order, a restart, its bound, compaction, and the poison-proof writer."""

from __future__ import annotations

import pytest
from django.db import DataError, OperationalError
from prometheus_client import REGISTRY

from bots.spool import Spool, storable, write_bisecting


def dropped_metric(name: str) -> float:
    return REGISTRY.get_sample_value("nezuko_spool_dropped_total", {"spool": name}) or 0.0


def test_it_reads_records_back_in_the_order_they_were_appended(tmp_path):
    spool = Spool(tmp_path, "t")
    for i in range(10):
        assert spool.append({"n": i, "name": f"x{i}"})
    spool.extend([{"n": 10}, {"n": 11}])
    # It should give the oldest first, up to the limit, without consuming them.
    assert [r["n"] for _, r in spool.read(5)] == [0, 1, 2, 3, 4]
    assert [r["n"] for _, r in spool.read(5)] == [0, 1, 2, 3, 4]
    first = spool.read(5)
    spool.ack(first[-1][0])
    assert len(spool) == 7
    assert [r["n"] for _, r in spool.read(100)] == [5, 6, 7, 8, 9, 10, 11]


def test_what_was_appended_survives_a_restart_and_acknowledged_records_stay_gone(tmp_path):
    spool = Spool(tmp_path, "t")
    for i in range(6):
        spool.append({"n": i, "text": "a\x00b\ud800"})
    spool.ack(spool.read(2)[-1][0])
    # The process dies without closing anything (the file is all there is).
    spool._file.close()

    again = Spool(tmp_path, "t")
    # It should find the four not acknowledged, in order, text intact.
    assert len(again) == 4
    records = [r for _, r in again.read(10)]
    assert [r["n"] for r in records] == [2, 3, 4, 5]
    assert records[0]["text"] == "a\x00b\ud800"


def test_a_torn_last_line_is_cut_off_at_open(tmp_path):
    spool = Spool(tmp_path, "t")
    spool.append({"n": 1})
    spool._file.write(b'{"n": 2, "half')
    spool.close()
    again = Spool(tmp_path, "t")
    assert [r for _, r in again.read(10)] == [{"n": 1}]
    again.append({"n": 3})
    assert [r["n"] for _, r in again.read(10)] == [1, 3]


def test_a_second_process_takes_its_own_slot(tmp_path):
    one, two = Spool(tmp_path, "t"), Spool(tmp_path, "t")
    one.append({"n": 1})
    assert one.path != two.path
    assert len(two) == 0


def test_past_its_bound_it_drops_and_counts(tmp_path):
    spool = Spool(tmp_path, "bounded", max_records=3)
    before = dropped_metric("bounded")
    kept = spool.extend([{"n": i} for i in range(5)])
    # It should keep what fits, and count the rest on the object and in the metric.
    assert kept == 3
    assert spool.dropped == 2
    assert dropped_metric("bounded") - before == 2
    assert not spool.append({"n": 5})
    by_bytes = Spool(tmp_path, "bytes", max_bytes=30)
    assert by_bytes.append({"n": "x" * 10})
    assert not by_bytes.append({"n": "y" * 10})
    assert by_bytes.dropped == 1


def test_a_drained_spool_is_compacted(tmp_path):
    spool = Spool(tmp_path, "t")
    spool.extend([{"n": i} for i in range(100)])
    assert spool.path.stat().st_size > 0
    records = spool.read(100)
    spool.ack(records[50][0])
    assert spool._offset_path.exists()
    spool.ack(records[-1][0])
    # It should truncate the file and forget the offset.
    assert spool.path.stat().st_size == 0
    assert not spool._offset_path.exists()
    assert len(spool) == 0
    spool.append({"n": "after"})
    assert [r for _, r in spool.read(10)] == [{"n": "after"}]


def test_bisecting_sets_aside_only_the_rows_that_can_never_be_stored():
    stored: list[int] = []
    set_aside: list[int] = []

    def write(batch):
        if any(n in (3, 11) for n in batch):
            raise DataError("refused")
        stored.extend(batch)

    done = write_bisecting(list(range(16)), write, lambda n, exc: set_aside.append(n))
    assert done == 16
    assert set_aside == [3, 11]
    # It should write every other row, in order.
    assert stored == [n for n in range(16) if n not in (3, 11)]


def test_bisecting_stops_at_an_outage_and_says_how_far_it_got():
    stored: list[int] = []

    def write(batch):
        if 5 in batch:
            raise OperationalError("server closed the connection")
        stored.extend(batch)

    done = write_bisecting(list(range(8)), write, lambda n, exc: pytest.fail("no poison"))
    assert done == 0
    assert stored == []


@pytest.mark.parametrize(("text", "clean"), [
    ("Carol", "Carol"), ("Ca\x00rol", "Carol"), ("lone \ud83d half", "lone  half"),
    ("Zoë 🐱", "Zoë 🐱"), ("", ""), (None, ""),
])
def test_storable_drops_only_what_a_database_refuses(text, clean):
    assert storable(text) == clean


def test_a_spool_that_cannot_be_opened_keeps_nothing_but_never_raises(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    spool = Spool(blocker / "spool", "t")
    # It should refuse records (counted as dropped) instead of failing the caller.
    assert not spool.append({"n": 1})
    assert (len(spool), spool.dropped, spool.read(10)) == (0, 1, [])
    spool.close()
