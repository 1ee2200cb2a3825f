"""The collector's per-agent sequence tracker (pure, virtual time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from roomwatch.core.sequence import MAX_SPAN, Gap, SeqTracker

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_in_order_messages_advance_the_ack() -> None:
    t = SeqTracker.unknown()
    for seq in range(5):
        t.add(seq, T0)
    assert t.contiguous == 4 and not t.above


def test_an_unknown_agent_is_owed_everything_until_its_status_says_otherwise() -> None:
    t = SeqTracker.unknown()
    t.add(215, T0)  # the broker dropped 0-214 before the collector subscribed
    assert t.contiguous == -1, "never acknowledge what was never stored"
    t.agent_acked(-1, T0)  # the agent still holds everything
    assert t.contiguous == -1
    for seq in range(215):
        t.add(seq, T0)  # its replay
    assert t.contiguous == 215


def test_a_status_lifts_what_the_agent_no_longer_holds() -> None:
    t = SeqTracker.unknown()  # e.g. the collector's database was replaced
    t.add(5001, T0)
    t.agent_acked(5000, T0)
    assert t.contiguous == 5001
    t.agent_acked(10, T0)  # an old retained status changes nothing
    assert t.contiguous == 5001


def test_a_hole_holds_the_ack_until_filled() -> None:
    t = SeqTracker.unknown()
    for seq in (0, 1, 3, 4):
        t.add(seq, T0)
    assert t.contiguous == 1
    assert t.stale_gap(at(10), grace_s=60) is None
    t.add(2, at(20))
    assert t.contiguous == 4 and t.gap_since is None


def test_a_hole_that_stays_open_is_reported_once_but_never_skipped() -> None:
    t = SeqTracker.unknown()
    for seq in (0, 1, 5, 6, 9):
        t.add(seq, T0)
    assert t.stale_gap(at(59), grace_s=60) is None
    assert t.stale_gap(at(60), grace_s=60) == Gap(2, 4)
    assert t.stale_gap(at(600), grace_s=60) is None, "reported once"
    assert t.contiguous == 1, "the agent still has 2-4: never acknowledge past them"
    for seq in (2, 3, 4):
        t.add(seq, at(601))
    assert t.contiguous == 6


def test_a_telemetry_dropped_summary_covers_its_run() -> None:
    t = SeqTracker.unknown()
    t.add(0, T0)
    t.add(11, T0)  # an event kept in the outbox
    t.cover(1, 10, T0)  # telemetry_dropped at seq 10 names 1..10
    assert t.contiguous == 11 and not t.above
    t.cover(20, 25, T0)
    assert t.contiguous == 11 and t.above == set(range(20, 26))


def test_a_forged_summary_above_a_hole_cannot_fill_memory() -> None:
    """Issue 14: a telemetry_dropped naming 10 to 2^62 above a hole made a set of 2^62
    numbers (the writer thread never came back)."""
    t = SeqTracker.unknown()
    t.add(0, T0)
    t.cover(10, 2**62, T0)
    assert t.above == {2**62} and t.contiguous == 0
    t.cover(5, 5 + MAX_SPAN - 1, T0)  # the largest real run is still taken whole
    assert len(t.above) == MAX_SPAN + 1


def test_duplicates_and_old_numbers_change_nothing() -> None:
    t = SeqTracker.unknown()
    for seq in (0, 1, 2, 1, 0, 2):
        t.add(seq, T0)
    assert t.contiguous == 2 and not t.above


def test_restart_follows_a_renumbered_agent() -> None:
    t = SeqTracker.unknown()
    for seq in range(100):
        t.add(seq, T0)
    t.restart_at(0)
    t.add(0, T0)
    assert t.contiguous == 0


@given(st.permutations(list(range(60))))
def test_any_arrival_order_ends_with_everything_acknowledged(order: list[int]) -> None:
    t = SeqTracker.unknown()
    for seq in order:
        t.add(seq, T0)
        assert t.contiguous < 60
    assert t.contiguous == 59 and not t.above and t.gap_since is None
