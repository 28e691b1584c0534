"""The curated contract's feature groups agree with the source vocabulary and the validation suite."""

from __future__ import annotations

from mlops.schema import curated
from mlops.source.vocabulary import CATEGORIES
from mlops.validation.features_suite import RANGES


def test_one_share_column_per_source_category():
    assert curated.SHARE_CATEGORIES == CATEGORIES  # the Glue bundle holds mlops.schema only, so the list is repeated
    assert set(curated.SHARE_FEATURES) <= set(curated.BASKET_FEATURES)


def test_every_numeric_feature_has_a_range_in_the_suite():
    assert set(curated.NUMERIC_FEATURES) == set(RANGES)
    assert RANGES["max_discount_pct"] == (0, 100) and all(RANGES[c] == (0, 1) for c in curated.SHARE_FEATURES)


def test_product_history_is_its_own_feature_group():
    assert set(curated.PRODUCT_HISTORY_FEATURES) <= set(curated.NUMERIC_FEATURES)
    assert not set(curated.PRODUCT_HISTORY_FEATURES) & set(curated.HISTORY_FEATURES)
    assert 0 < curated.PRODUCT_RATE_PRIOR["returned"] < 1 and 0 < curated.PRODUCT_RATE_PRIOR["cancelled"] < 1
