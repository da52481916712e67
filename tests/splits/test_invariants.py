"""Invariants every splitter must meet: complete, disjoint, vocabularies kept, reproducible."""

import dataclasses

import pytest

from tests.splits.helpers import RANDOMISED, SPLITTERS, assert_split_invariants


@pytest.mark.parametrize("kind", sorted(SPLITTERS))
def test_parts_are_complete_disjoint_and_keep_vocabularies(kind, events):
    splits = SPLITTERS[kind]().split(events)
    assert splits, "a splitter returns at least one split"
    for fold, split in enumerate(splits):
        assert split.fold == fold and split.n_folds == len(splits)
        assert_split_invariants(events, split)


@pytest.mark.parametrize("kind", sorted(SPLITTERS))
def test_same_parameters_same_split(kind, events):
    a = SPLITTERS[kind]().split(events)
    b = SPLITTERS[kind]().split(events)
    assert [s.fingerprint for s in a] == [s.fingerprint for s in b]


@pytest.mark.parametrize("kind", sorted(RANDOMISED))
def test_seed_decides_the_split(kind, events):
    a = SPLITTERS[kind](seed=1).split(events)
    b = SPLITTERS[kind](seed=1).split(events)
    c = SPLITTERS[kind](seed=2).split(events)
    assert [s.fingerprint for s in a] == [s.fingerprint for s in b]
    assert [s.fingerprint for s in a] != [s.fingerprint for s in c]


@pytest.mark.parametrize("kind", sorted(SPLITTERS))
def test_fingerprint_is_stable_and_content_based(kind, events):
    split = SPLITTERS[kind]().split(events)[0]
    fp = split.fingerprint
    assert fp == split.fingerprint  # cached, unchanged
    # the same parts under another name/params hash the same: the fingerprint is content
    assert dataclasses.replace(split, name="other", params={}).fingerprint == fp
    # swapping train and test changes it
    assert dataclasses.replace(split, train=split.test, test=split.train).fingerprint != fp


@pytest.mark.parametrize("kind", sorted(SPLITTERS))
def test_split_records_name_params_and_summary(kind, events):
    splitter = SPLITTERS[kind]()
    split = splitter.split(events)[0]
    assert split.name == splitter.name
    assert dict(split.params) == splitter.get_params()
    summary = split.summary()
    assert summary["fingerprint"] == split.fingerprint
    assert summary["parts"]["train"]["rows"] == len(split.train)
    assert summary["info"]["test_users"] == summary["parts"]["test"]["users"]
    if split.validation is not None:
        assert summary["parts"]["validation"]["rows"] == len(split.validation) > 0
