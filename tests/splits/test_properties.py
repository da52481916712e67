"""Property test: on any small dataset every splitter either splits soundly or says why not."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.data.interactions import Interactions
from bench.errors import SplitError
from bench.splits import (
    GlobalTemporalSplitter,
    ItemColdStartSplitter,
    KFoldSplitter,
    LeaveLastNSplitter,
    RandomHoldoutSplitter,
    UserColdStartSplitter,
)
from tests.splits.helpers import assert_split_invariants


@st.composite
def datasets(draw):
    """Up to 10 users x 10 items at a drawn density; timestamps with few or many ties."""
    n_users = draw(st.integers(1, 10))
    n_items = draw(st.integers(1, 10))
    density = draw(st.sampled_from([0.2, 0.5, 0.8, 1.0]))
    ts_max = draw(st.sampled_from([1, 5, 1000]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    present = rng.random(n_users * n_items) < density
    present[rng.integers(len(present))] = True
    cells = np.flatnonzero(present)
    frame = pd.DataFrame(
        {
            "user_id": cells // n_items,
            "item_id": cells % n_items,
            "timestamp": rng.integers(0, ts_max + 1, size=len(cells)),
        }
    )
    return Interactions.from_frame(frame.sample(frac=1.0, random_state=0), source="generated")


fractions = st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9])
validations = st.one_of(st.none(), fractions)
seeds = st.integers(0, 2**32)
splitters = st.one_of(
    st.builds(
        GlobalTemporalSplitter,
        quantile=fractions,
        cold_users=st.sampled_from(["keep", "drop"]),
        validation=validations,
    ),
    st.builds(
        LeaveLastNSplitter,
        n=st.integers(1, 3),
        min_train=st.integers(0, 2),
        validation=validations,
    ),
    st.builds(
        RandomHoldoutSplitter,
        fraction=fractions,
        seed=seeds,
        min_train=st.integers(0, 2),
        validation=validations,
    ),
    st.builds(
        KFoldSplitter,
        n_folds=st.integers(2, 4),
        seed=seeds,
        stratify=st.sampled_from(["user", "none"]),
    ),
    st.builds(
        UserColdStartSplitter,
        fraction=fractions,
        fold_in=st.integers(0, 3),
        seed=seeds,
        validation=validations,
    ),
    st.builds(ItemColdStartSplitter, fraction=fractions, seed=seeds, validation=validations),
)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.slow  # 600 Hypothesis examples; the invariant tests cover the fast tier
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), splitter=splitters)
def test_split_is_sound_or_refused_with_a_reason(data, splitter):
    try:
        splits = splitter.split(data)
    except SplitError as exc:
        # only "nothing left" refusals are acceptable; a failed post-condition is a bug
        assert "bug" not in str(exc)
        assert "leaves no" in str(exc)
        event(f"{splitter.name}: refused")
        return
    event(f"{splitter.name}: split")
    assert len(splits) == getattr(splitter, "n_folds", 1)
    for split in splits:
        assert_split_invariants(data, split)
        if splitter.cold_axis == "user":
            train = set(split.train.users.tolist())
            assert not train & set(split.test.users.tolist())
        if splitter.cold_axis == "item":
            assert not set(split.train.items.tolist()) & set(split.test.items.tolist())
    again = splitter.split(data)
    assert [s.fingerprint for s in again] == [s.fingerprint for s in splits]
