"""Summarization reward: similarity, coverage, length, and nothing for handing the source back."""

from __future__ import annotations

import numpy as np
import pytest

from subnet_proxy.rewards.summarization import (
    SummarizationReferences,
    length_term,
    reward_summarization,
    semantic_term,
    word_bound,
)
from subnet_proxy.tasks import TaskKind
from tests.rewards.conftest import by_hotkey, make_task, response

SOURCE = (
    "Honey bees live together in colonies of many thousands. Each colony has a single queen who lays all "
    "of the eggs. Worker bees gather nectar and pollen from flowers across the fields. They tell one another "
    "where the best flowers are by dancing inside the hive. The nectar is stored in wax cells and slowly "
    "thickens into honey. Bees fan their wings to cool the hive on hot summer days. In winter they cluster "
    "together and shiver to stay warm. Farmers depend on bees to pollinate fruit trees and many crops."
)
REFERENCE = "Honey bees live together in colonies of many thousands. The nectar is stored in wax cells."
GOOD = "Bees live in colonies of thousands around one queen and turn nectar into honey."
OFF_TOPIC = "The lighthouse stood on a bare rock at the mouth of the harbour."


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


SOURCE_VEC = unit(1, 0, 0)


def score(answers: dict[str, str], vectors: dict[str, np.ndarray], *, max_words: int | None = 30) -> dict:
    task = make_task(TaskKind.SUMMARIZATION, text=SOURCE, max_words=max_words)
    references = SummarizationReferences(REFERENCE, SOURCE_VEC, vectors)
    responses = [response(task, h, uid=i, order=i, text=t) for i, (h, t) in enumerate(answers.items())]
    return by_hotkey(reward_summarization(task, None, responses, references, timeout_s=10.0))


def test_a_faithful_summary_beats_an_off_topic_one() -> None:
    rewards = score({"good": GOOD, "extract": REFERENCE, "off": OFF_TOPIC},
                    {"good": unit(0.9, 0.3, 0), "extract": unit(0.8, 0.5, 0), "off": unit(0.1, 0, 1)})
    assert rewards["extract"].breakdown["coverage"] == pytest.approx(1.0)
    assert rewards["good"].breakdown["semantic"] > 0.9
    assert min(rewards["good"].reward, rewards["extract"].reward) > 0.6
    assert rewards["off"].reward < 0.15


@pytest.mark.parametrize("max_words", [None, 200])
def test_the_source_handed_back_earns_nothing(max_words: int | None) -> None:
    most = " ".join(SOURCE.split(". ")[:-1])  # all but the last sentence
    rewards = score({"source": SOURCE, "most": most}, {"source": SOURCE_VEC, "most": SOURCE_VEC}, max_words=max_words)
    for hotkey in ("source", "most"):
        assert rewards[hotkey].reward == 0.0
        assert {"rejected_verbatim_source", "rejected_oversize"} & set(rewards[hotkey].breakdown)
    assert "rejected_verbatim_source" in score({"s": SOURCE}, {"s": SOURCE_VEC}, max_words=200)["s"].breakdown


def test_length_over_the_bound_costs_and_far_over_is_refused() -> None:
    assert length_term(30, 30) == 1.0
    assert length_term(36, 30) == pytest.approx(0.6)
    assert length_term(45, 30) == 0.0
    rewards = score({"long": GOOD + " " + REFERENCE}, {"long": unit(1, 0.2, 0)}, max_words=20)
    assert rewards["long"].breakdown["length"] < 1.0
    assert "rejected_oversize" in score({"x": GOOD * 4}, {"x": SOURCE_VEC}, max_words=10)["x"].breakdown


def test_empty_or_tiny_answers_are_invalid() -> None:
    rewards = score({"empty": "", "tiny": "Bees."}, {})
    assert all(r.reward == 0.0 and "rejected_empty" in r.breakdown for r in rewards.values())


def test_bound_and_semantic_mapping() -> None:
    assert word_bound(SOURCE, 25) == 25
    assert word_bound(SOURCE, None) == 30  # a quarter of ~90 words is under the floor
    assert semantic_term(0.05) == 0.0 and semantic_term(0.95) == 1.0
    assert 0.0 < semantic_term(0.45) < 1.0


def test_a_missing_embedding_earns_no_semantic_credit() -> None:
    rewards = score({"good": GOOD}, {})
    assert rewards["good"].breakdown["semantic"] == 0.0
