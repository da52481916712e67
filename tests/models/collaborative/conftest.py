"""Fixtures for the collaborative-model tests: the tables of ``cf_data``, fresh per test."""

import pytest

from tests.models.collaborative import cf_data


@pytest.fixture
def checkerboard():
    return cf_data.checkerboard()


@pytest.fixture
def random_ratings():
    return cf_data.random_ratings()
