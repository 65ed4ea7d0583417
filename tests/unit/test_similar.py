"""Similar items for item pages: item CF first, product text for items without co-purchases; hand-made cases."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pipelines.serving.similar import complete_basket, similar_items

pytestmark = pytest.mark.unit
ITEMS = pd.Index(["a", "b", "c", "d"], name="item_id")


def item_cf() -> SimpleNamespace:
    """a~b 0.9, a~c 0.5 (a row's own entry is its self-similarity); c and d have no co-purchases."""
    sim = sp.csr_matrix(np.array([[1.0, 0.9, 0.5, 0], [0.9, 1.0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    return SimpleNamespace(name="item_cf", ui_=SimpleNamespace(items=ITEMS), similarity_=sim)


def content() -> SimpleNamespace:
    """Unit text vectors: c is close to a (cos 0.8) and to d (0.6); b is orthogonal to everything."""
    vectors = sp.csr_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0], [0.8, 0, 0.6], [0, 0, 1.0]]))
    return SimpleNamespace(name="content", ui_=SimpleNamespace(items=ITEMS), item_vectors_=vectors, has_text_=True)


def lists(frame: pd.DataFrame) -> dict[str, list[tuple]]:
    return {
        item: list(g.sort_values("rank")[["similar_id", "score", "source"]].itertuples(index=False, name=None))
        for item, g in frame.groupby("item_id")
    }


def test_item_cf_neighbours_come_first_and_text_fills_up_to_k():
    got = lists(similar_items([item_cf(), content()], k=2))
    assert got == {
        "a": [("b", 0.9, "item_cf"), ("c", 0.5, "item_cf")],  # full from item CF: text not needed
        "b": [("a", 0.9, "item_cf")],  # orthogonal text: nothing to fill with
        "c": [("a", pytest.approx(0.8), "content"), ("d", pytest.approx(0.6), "content")],  # new: text only
        "d": [("c", pytest.approx(0.6), "content")],
    }


def test_an_item_is_never_its_own_neighbour_and_k_is_a_cap():
    got = lists(similar_items([item_cf(), content()], k=1))
    assert all(item not in [o for o, _, _ in rows] for item, rows in got.items())
    assert {item: len(rows) for item, rows in got.items()} == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_without_item_cf_or_content_there_are_no_lists():
    assert similar_items([SimpleNamespace(name="popularity")], k=5).empty
    assert lists(similar_items([item_cf()], k=5))["a"] == [("b", 0.9, "item_cf"), ("c", 0.5, "item_cf")]


def test_a_basket_fuses_its_lists_by_reciprocal_rank_without_its_own_items():
    a = [{"item_id": "b"}, {"item_id": "c"}]
    b = [{"item_id": "c"}, {"item_id": "d"}]
    got = complete_basket([("a", a), ("b", b), ("z", None)], k=5)
    assert got == [
        {"item_id": "c", "score": round(1 / 62 + 1 / 61, 6), "because": ["a", "b"]},
        {"item_id": "d", "score": round(1 / 62, 6), "because": ["b"]},
    ]
    assert complete_basket([("z", None)], k=5) == []
