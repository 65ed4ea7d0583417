"""Which published lists a daily run keeps (pipelines/serving/refresh.py), and which version it builds on."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.core.errors import InputError
from pipelines.core.files import parquet_parts, sha256
from pipelines.serving.publish import Releases
from pipelines.serving.refresh import SCORED, kept_lists

AS_OF = pd.Timestamp("2011-12-10")
DAY = pd.Timedelta(days=1)


def params(reuse: Path | None, **publish) -> dict:
    return {
        "publish": {"k": 2, "rerank_candidates": 1, "refresh_days": 7, "reuse_lists": reuse and str(reuse), **publish},
        "recommend": {"contributions": "path"},
        "candidates": {"sources": {"popularity": {"n": 5}}, "selection": None},
        "features": {"every_days": 7, "active_days": 365, "clusters": 5, "keywords": 3, "seed": 42, "repo": "x"},
    }


@pytest.fixture
def published(tmp_path) -> tuple[Path, Path]:
    """A live version's copy: customers a..d scored at different dates (d: the day before as-of), and a model."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "ranker.lgb").write_text("tree")
    lists = tmp_path / "published"
    lists.mkdir()
    scored = {"a": AS_OF - 2 * DAY, "b": AS_OF - 2 * DAY, "c": AS_OF - 8 * DAY, "d": AS_OF - DAY}
    recs = pd.DataFrame(
        [(c, item, rank, 1.0 / rank, when) for c, when in scored.items() for rank, item in ((1, "x"), (2, "y"))],
        columns=["customer_id", "item_id", "rank", "score", SCORED],
    )
    recs.to_parquet(lists / "recommendations.parquet", index=False)
    pd.DataFrame({"customer_id": list("abcd"), "item_id": "x", "f": [1.0, 2.0, 3.0, 4.0]}).to_parquet(
        lists / "candidates.parquet", index=False
    )
    manifest = {
        "version": "v1",
        "model": {"sha256": sha256([model / "ranker.lgb"])},
        "data_window": {"as_of": str(AS_OF - DAY)},
        "params": params(None) | {"features": params(None)["features"] | {"repo": "elsewhere"}},
    }
    (lists / "manifest.json").write_text(json.dumps(manifest))
    return lists, model


def history(purchases: dict[str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": list(purchases), "timestamp": list(purchases.values())})


def test_due_customers_are_those_with_a_purchase_since_no_list_or_an_old_list(published):
    lists, model = published
    # a bought after its list was scored; b did not; c's list is 8 days old; d bought before; e is new
    bought = {"a": AS_OF - DAY, "b": AS_OF - 3 * DAY, "c": AS_OF - 9 * DAY, "d": AS_OF - 2 * DAY, "e": AS_OF - DAY}
    customers = pd.Index(sorted(bought), name="customer_id")
    kept = kept_lists(history(bought), customers, AS_OF, model, params(lists))
    assert list(kept.customers) == ["b", "d"]
    assert list(kept_lists(history(bought), customers, AS_OF, model, params(lists, refresh_days=8)).customers) == [
        "b",
        "c",
        "d",
    ]
    assert kept_lists(history(bought), customers, AS_OF, model, params(None)) is None  # reuse off: rank everyone
    assert kept_lists(history(bought), customers, AS_OF, model, params(lists, refresh_days=0)) is None  # none kept


@pytest.mark.parametrize(
    "change",
    [
        lambda lists, model, p: (model / "ranker.lgb").write_text("another tree"),
        lambda lists, model, p: p["publish"].update(k=3),
        lambda lists, model, p: p["candidates"]["sources"]["popularity"].update(n=6),
        lambda lists, model, p: p["features"].update(active_days=30),
    ],
    ids=["model", "k", "sources", "features"],
)
def test_lists_made_another_way_are_not_kept(published, change):
    lists, model = published
    p = params(lists)
    change(lists, model, p)
    bought = {"b": AS_OF - 3 * DAY}
    assert kept_lists(history(bought), pd.Index(["b"]), AS_OF, model, p) is None


def test_lists_of_a_later_date_are_not_kept(published):
    lists, model = published
    bought = {"b": AS_OF - 9 * DAY}
    assert kept_lists(history(bought), pd.Index(["b"]), AS_OF - 2 * DAY, model, params(lists)) is None


def test_a_missing_copy_is_a_one_line_error(published):
    lists, model = published
    (lists / "candidates.parquet").unlink()
    with pytest.raises(InputError, match=r"publish.reuse_lists: .* has no candidates.parquet"):
        kept_lists(history({"b": AS_OF}), pd.Index(["b"]), AS_OF, model, params(lists))


def test_kept_rows_are_copied_as_published_and_older_lists_get_the_versions_date(published, tmp_path):
    lists, model = published
    recs = pd.read_parquet(lists / "recommendations.parquet")
    recs.drop(columns=SCORED).to_parquet(lists / "recommendations.parquet", index=False)  # published before SCORED
    bought = {"a": AS_OF - 3 * DAY, "b": AS_OF - DAY}
    kept = kept_lists(history(bought), pd.Index(["a", "b"]), AS_OF, model, params(lists))
    assert list(kept.customers) == ["a"]  # b bought after the version's as-of
    with parquet_parts(tmp_path / "r.parquet") as write, parquet_parts(tmp_path / "c.parquet") as write_candidates:
        assert kept.copy(write, write_candidates) == {"recommendations": 2, "rerank_candidates": 1}
    expected = recs[recs["customer_id"] == "a"].assign(**{SCORED: AS_OF - DAY})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r.parquet"), expected, check_dtype=False)
    assert pd.read_parquet(tmp_path / "c.parquet")["f"].tolist() == [1.0]


def test_parquet_parts_takes_arrow_tables_after_frames(tmp_path):
    import pyarrow as pa

    with parquet_parts(tmp_path / "p.parquet") as write:
        write(pd.DataFrame({"a": [1, 2], "when": pd.to_datetime(["2011-12-01", "2011-12-02"])}))
        write(pa.table({"a": pa.array([3], pa.int32()), "when": pa.array([AS_OF.to_pydatetime()], pa.timestamp("s"))}))
    back = pd.read_parquet(tmp_path / "p.parquet")
    assert back["a"].tolist() == [1, 2, 3] and back["when"].iloc[-1] == AS_OF  # cast to the first part's types
    with pytest.raises(ValueError, match="a part has columns"), parquet_parts(tmp_path / "never.parquet") as write:
        write(pd.DataFrame({"a": [1]}))
        write(pa.table({"b": [3]}))
    assert not (tmp_path / "never.parquet").exists()


def test_the_version_a_day_builds_on(tmp_path):
    releases = Releases(tmp_path)
    index = []
    for version, as_of in (("w", "2011-12-01"), ("d1", "2011-12-02"), ("d1b", "2011-12-02"), ("d2", "2011-12-03")):
        (tmp_path / "versions" / version).mkdir(parents=True)
        (tmp_path / "versions" / version / "manifest.json").write_text(json.dumps({"data_window": {"as_of": as_of}}))
        index.append({"version": version})
    (tmp_path / "index.json").write_text(json.dumps(index))
    day = pd.Timestamp("2011-12-03")
    assert releases.before(day) == "d1b"  # nothing live: the last published of the latest date before
    releases.switch("d2")
    assert releases.before(day) == "d1b"  # a re-run of the day: not its own version
    releases.switch("w")
    assert releases.before(day) == "w"  # a rollback: the live version
    assert releases.before(pd.Timestamp("2011-12-01")) is None
