"""The agent's on-disk outbox: atomic numbering, ack, bounded capacity, crash survival."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roomwatch.core import wire
from roomwatch.edge_agent.outbox import Outbox, OutboxError


def put(outbox: Outbox, kind: str = "telemetry") -> int:
    def build(seq: int) -> bytes:
        return json.dumps({"kind": kind, "seq": seq, "ts": "2026-01-05T08:00:00.000Z"}).encode()

    return outbox.append(kind, wire.topic("s", "r", kind), build)


def test_numbers_start_at_zero_and_survive_a_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "agent.db")
    assert [put(box) for _ in range(3)] == [0, 1, 2]
    box.close()  # as after a power cut: the file is all there is
    again = Outbox(tmp_path / "agent.db")
    assert put(again) == 3
    assert [json.loads(r.payload)["seq"] for r in again.after(-1)] == [0, 1, 2, 3]


def test_the_payload_is_built_with_its_own_number(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "agent.db")
    seq = box.append("event", "t", lambda n: b'{"seq": %d}' % n)
    assert box.after(-1)[0].payload == b'{"seq": %d}' % seq


def test_a_failed_build_uses_no_number(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "agent.db")

    def broken(seq: int) -> bytes:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        box.append("event", "t", broken)
    assert put(box) == 0, "no gap in the sequence"
    assert len(box) == 1


def test_ack_forgets_up_to_and_including(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "agent.db")
    for _ in range(5):
        put(box)
    assert box.ack(2) == 3
    assert [r.seq for r in box.after(-1)] == [3, 4]
    assert box.ack(1) == 0, "an older ack changes nothing"
    assert box.acked == 2


def test_when_full_old_telemetry_is_summarised_and_every_number_stays_accounted_for(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "agent.db", capacity=20)
    put(box, "episode")
    for _ in range(10):
        put(box, "telemetry")
    put(box, "event")
    for _ in range(30):
        put(box, "telemetry")
    rows = box.after(-1, limit=1000)
    assert len(rows) <= 20
    accounted: set[int] = set()
    for row in rows:
        if row.kind == "event" and json.loads(row.payload).get("type") == "telemetry_dropped":
            summary = wire.decode(row.topic, row.payload)
            assert isinstance(summary, wire.Decoded), summary
            assert isinstance(summary.message, wire.Event)
            fields = summary.message.fields
            assert summary.message.seq == fields["last_seq"] == row.seq
            accounted.update(range(fields["first_seq"], fields["last_seq"] + 1))
        else:
            accounted.add(row.seq)
    assert accounted == set(range(42)), "no number lost without a word"
    kinds = [json.loads(r.payload).get("kind") for r in rows]
    assert kinds.count("episode") == 1 and kinds.count("event") == 1
    assert box.dropped > 0
    assert rows[-1].seq == 41, "the newest are kept"


def test_a_full_outbox_of_episodes_keeps_them_all(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "agent.db", capacity=10)
    for _ in range(15):
        put(box, "episode")
    assert len(box) == 15 and box.dropped == 0


def test_the_open_episode_is_remembered(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "agent.db")
    box.save_episode("s.r.1", "2026-01-05T08:00:00.000Z", "occupancy")
    box.close()
    again = Outbox(tmp_path / "agent.db")
    assert again.open_episode() == ("s.r.1", "2026-01-05T08:00:00.000Z", "occupancy")
    again.save_episode(None)
    assert again.open_episode() is None


def test_a_broken_database_file_gives_an_outbox_error(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "agent.db")
    box._db.execute("DROP TABLE outbox")  # the file damaged behind our back
    with pytest.raises(OutboxError, match=r"agent\.db: cannot store a telemetry message"):
        put(box)
