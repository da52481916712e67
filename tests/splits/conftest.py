"""Fixtures for the split tests."""

import pytest

from tests.splits.helpers import make_events


@pytest.fixture(scope="module")
def events():
    """60 users, 40 items, 1-20 rows per user, timestamps with many ties, ratings 1-5."""
    return make_events()
