"""The ScoreBook: EMA arithmetic, guards, hotkey changes, growth, stats, atomic save and restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.config import Settings
from subnet_proxy.validator.scores import SUCCESS_WINDOW, ScoreBook


def snap(*hotkeys: str) -> MetagraphSnapshot:
    return MetagraphSnapshot(netuid=1, block=10, neurons=tuple(
        Neuron(uid=i, hotkey=h, coldkey="ck", stake=0.0, ip="127.0.0.1", port=9000 + i, validator_permit=False,
               last_update=0) for i, h in enumerate(hotkeys)))


def test_ema_follows_rewards() -> None:
    book = ScoreBook(alpha=0.5)
    book.sync(snap("a", "b"))
    assert book.update(0, "a", 1.0) and book.update(0, "a", 1.0) and book.update(0, "a", 0.0)
    # 0 -> 0.5 -> 0.75 -> 0.375
    assert book.scores().tolist() == pytest.approx([0.375, 0.0])
    stat = book.stats()[0]
    assert stat.attempts == 3 and stat.consecutive_failures == 1
    assert stat.success_rate == pytest.approx(2 / 3)


def test_non_finite_and_out_of_range_rewards_are_guarded() -> None:
    book = ScoreBook(alpha=0.5)
    book.sync(snap("a"))
    book.update(0, "a", 1.0)
    book.update(0, "a", float("nan"))
    book.update(0, "a", float("inf"))
    assert book.scores().tolist() == pytest.approx([0.125])
    book.update(0, "a", 7.0)  # clamped to 1
    book.update(0, "a", -3.0, latency_s=float("nan"))  # clamped to 0; the latency is ignored
    assert book.scores().tolist() == pytest.approx([(0.125 * 0.5 + 0.5) * 0.5])
    assert book.stats()[0].latency_s is None


def test_latency_and_success_rate() -> None:
    book = ScoreBook(alpha=0.1)
    book.sync(snap("a"))
    book.update(0, "a", 0.8, latency_s=1.0)
    book.update(0, "a", 0.8, latency_s=2.0)
    assert book.stats()[0].latency_s == pytest.approx(0.8 * 1.0 + 0.2 * 2.0)
    for _ in range(SUCCESS_WINDOW):
        book.update(0, "a", 0.0)  # the window forgets the two successes
    stat = book.stats()[0]
    assert stat.success_rate == 0.0 and stat.consecutive_failures == SUCCESS_WINDOW
    book.update(0, "a", 0.0, success=True)  # an answer that scored 0 still counts as answered
    assert book.stats()[0].consecutive_failures == 0


def test_a_new_hotkey_on_a_uid_starts_from_zero_and_late_rewards_are_dropped() -> None:
    book = ScoreBook(alpha=0.5)
    book.sync(snap("a", "b"))
    book.update(0, "a", 1.0, latency_s=0.1)
    book.update(1, "b", 1.0)
    assert book.sync(snap("a2", "b")) == [0]
    assert book.scores().tolist() == pytest.approx([0.0, 0.5])
    assert book.stats()[0].hotkey == "a2" and book.stats()[0].latency_s is None
    assert not book.update(0, "a", 1.0)  # the old owner's late answer
    assert not book.update(5, "x", 1.0)  # a uid the book does not know
    assert book.scores().tolist() == pytest.approx([0.0, 0.5])


def test_the_book_grows_with_the_metagraph() -> None:
    book = ScoreBook(alpha=0.5)
    book.sync(snap("a"))
    book.update(0, "a", 1.0)
    assert book.sync(snap("a", "b", "c")) == []
    assert book.n == 3 and book.hotkey(2) == "c"
    assert book.scores().tolist() == pytest.approx([0.5, 0.0, 0.0])


def test_stats_rows_follow_every_change() -> None:
    book = ScoreBook(alpha=0.5)
    book.sync(snap("a", "b"))
    first = book.stats()
    assert book.stats()[0] is first[0]  # unchanged rows are not rebuilt
    book.update(1, "b", 1.0, latency_s=0.2)
    second = book.stats()
    assert second[0] is first[0] and second[1].ema_score == 0.5 and second[1].latency_s == 0.2
    book.record_weights([1], [1.0])
    assert [s.last_weight for s in book.stats()] == [0.0, 1.0]
    book.sync(snap("a", "c"))
    assert book.stats()[1].hotkey == "c" and book.stats()[1].ema_score == 0.0


def test_weights_computed_for_a_replaced_hotkey_are_not_shown_on_its_successor() -> None:
    """The weights loop computes, then waits for the chain; a resync meanwhile may hand a uid to a new
    hotkey, which must not show the weight its predecessor earned (seen in the e2e: 0.93 on a new uid)."""
    book = ScoreBook(alpha=0.5)
    book.sync(snap("a", "b"))
    computed_for = {s.uid: s.hotkey for s in book.stats()}
    book.sync(snap("a", "c"))  # uid 1 replaced while the weights were being set
    book.record_weights([0, 1], [0.07, 0.93], computed_for=computed_for)
    assert [s.last_weight for s in book.stats()] == [0.07, None]


def test_record_weights_and_stats() -> None:
    book = ScoreBook(alpha=0.5)
    book.sync(snap("a", "b", "c"))
    book.record_weights([0, 2], [0.25, 0.75])
    assert [s.last_weight for s in book.stats()] == [0.25, 0.0, 0.75]
    assert [s.uid for s in book.stats()] == [0, 1, 2]


async def test_save_and_restore_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "scores.json"
    book = ScoreBook(alpha=0.5, path=path)
    book.sync(snap("a", "b"))
    book.update(1, "b", 1.0, latency_s=0.3)
    book.record_weights([1], [1.0])
    assert book.dirty
    await book.persist()
    assert not book.dirty and path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["scores.json"]  # no temp file left behind
    restored = ScoreBook.restore(path, alpha=0.5)
    assert restored.stats() == book.stats()
    # restored and synced with the same metagraph: nothing reset
    assert restored.sync(snap("a", "b")) == []
    assert restored.scores().tolist() == pytest.approx([0.0, 0.5])


async def test_persist_only_writes_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    book = ScoreBook(alpha=0.5, path=path)
    await book.persist()
    assert not path.exists()  # nothing changed yet
    book.sync(snap("a"))
    await book.persist()
    before = path.stat().st_mtime_ns
    await book.persist()
    assert path.stat().st_mtime_ns == before


def test_an_unreadable_book_is_moved_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    path.write_text("{broken")
    book = ScoreBook.restore(path, alpha=0.5)
    assert book.n == 0
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("scores.json.unreadable-")]
    assert aside.read_text() == "{broken"
    path.write_text(json.dumps({"format": 99, "uids": []}))
    assert ScoreBook.restore(path, alpha=0.5).n == 0
    assert len([p for p in tmp_path.iterdir() if ".unreadable-" in p.name]) == 2  # each kept
    assert ScoreBook.restore(tmp_path / "missing.json", alpha=0.5).n == 0


def test_alpha_is_checked() -> None:
    with pytest.raises(ValueError, match="alpha"):
        ScoreBook(alpha=0.0)


def test_for_settings_restores_the_book_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.model_validate({"neuron": {"data_dir": str(tmp_path), "moving_average_alpha": 0.25}})
    book = ScoreBook.for_settings(settings)
    book.sync(snap("a"))
    book.update(0, "a", 1.0)
    book.save()
    again = ScoreBook.for_settings(settings)
    assert again.path == tmp_path / "scores" / "netuid-1.json" and again.alpha == 0.25
    assert again.scores().tolist() == pytest.approx([0.25])
