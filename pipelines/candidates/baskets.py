"""Customers' baskets in time order: the shared input of the next-basket sources (TIFU-KNN, UP-CF@r)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.candidates.matrix import UserItems
from pipelines.core import schema as s

AGE = "basket_age"  # 0 = the customer's newest basket, 1 = the one before, ...
COUNT = "baskets"  # how many baskets the customer has


def before(history: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rows strictly before `as_of` (the same frame when there is nothing later, so shared matrices stay shared)."""
    late = history[s.TS] >= as_of
    return history[~late] if late.any() else history


def basket_lines(history: pd.DataFrame) -> pd.DataFrame:
    """One row per customer x basket x item (a basket is an order; an item counts once in it):
    CUSTOMER, ITEM, AGE and COUNT. Baskets are ordered by their first line's time, then order id."""
    lines = history.drop_duplicates([s.CUSTOMER, s.ORDER, s.ITEM])[[s.CUSTOMER, s.ORDER, s.ITEM, s.TS]]
    baskets = lines.groupby([s.CUSTOMER, s.ORDER], sort=False)[s.TS].min().reset_index()
    baskets = baskets.sort_values([s.CUSTOMER, s.TS, s.ORDER], ascending=[True, False, False], kind="stable")
    per_customer = baskets.groupby(s.CUSTOMER, sort=False)
    baskets[AGE] = per_customer.cumcount().to_numpy()
    baskets[COUNT] = per_customer[s.ORDER].transform("size").to_numpy()
    return lines.merge(baskets[[s.CUSTOMER, s.ORDER, AGE, COUNT]], on=[s.CUSTOMER, s.ORDER])[
        [s.CUSTOMER, s.ITEM, AGE, COUNT]
    ]


def weighted(lines: pd.DataFrame, weight: np.ndarray, ui: UserItems) -> sp.csr_matrix:
    """Customer x item matrix (rows and columns those of `ui`) of the lines' summed weights."""
    rows, cols = ui.customers.get_indexer(lines[s.CUSTOMER]), ui.items.get_indexer(lines[s.ITEM])
    m = sp.csr_matrix((np.asarray(weight, dtype=np.float32), (rows, cols)), shape=ui.matrix.shape)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m
