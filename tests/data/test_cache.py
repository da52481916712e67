"""The synthetic data's row cache: the same rows back, only for the same arguments, and
never a damaged entry."""

import inspect
import json
import logging

import numpy as np
import pytest

from bench.data import cache, synthetic
from bench.errors import ParameterError

KW = {"n_users": 300, "n_items": 120, "n_interactions": 6000, "seed": 4, "n_segments": 3}


@pytest.fixture(autouse=True)
def small_data_cached(monkeypatch):
    monkeypatch.setattr(synthetic, "CACHE_MIN_ROWS", 0)  # the tests' data is small


def rows(ds):
    x = ds.interactions
    return {name: getattr(x, name) for name in ("users", "items", "ratings", "timestamps")}


def assert_same(a, b):
    for (name, x), y in zip(rows(a).items(), rows(b).values(), strict=True):
        if x is None:
            assert y is None, name
            continue
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.interactions.fingerprint() == b.interactions.fingerprint()
    assert a.user_features.equals(b.user_features)
    assert a.interactions.rating_scale == b.interactions.rating_scale
    assert dict(a.drops) == dict(b.drops)


def test_a_cached_run_reads_back_the_rows_it_generated(tmp_path, caplog):
    fresh = synthetic.generate_synthetic(**KW)
    with caplog.at_level(logging.INFO, logger="bench"):
        first = synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
        entry = synthetic.cache_entry(str(tmp_path), **KW)
        assert (entry / "meta.json").is_file()
        second = synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    assert "rows kept in" in caplog.text and "rows read from" in caplog.text
    assert_same(fresh, first)
    assert_same(fresh, second)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["fingerprint"] == fresh.interactions.fingerprint()
    assert meta["dtypes"] == {"users": "int32", "items": "int32", "ratings": "int8",
                              "timestamps": "uint32"}


def test_implicit_rows_round_trip(tmp_path):
    kw = {**KW, "implicit": True}
    fresh = synthetic.generate_synthetic(**kw)
    synthetic.generate_synthetic(**kw, cache_dir=str(tmp_path))
    again = synthetic.generate_synthetic(**kw, cache_dir=str(tmp_path))
    assert again.interactions.ratings is None
    assert_same(fresh, again)


def other_value(name, value):
    if isinstance(value, bool):
        return not value
    if name == "start":
        return "2021-06-01"
    if name == "popularity_exponent":
        return value + 0.5
    return value + 1


def test_the_key_covers_every_argument_and_a_changed_one_misses(tmp_path):
    params = inspect.signature(synthetic.generate_synthetic).parameters
    names = [n for n in params if n != "cache_dir"]
    base = {n: params[n].default for n in names} | KW
    entry = synthetic.cache_entry(str(tmp_path), **base)
    synthetic.generate_synthetic(**base, cache_dir=str(tmp_path))
    assert (entry / "meta.json").is_file()
    for name in names:
        changed = {**base, name: other_value(name, base[name])}
        other = synthetic.cache_entry(str(tmp_path), **changed)
        assert other != entry, name
        assert not (other / "meta.json").is_file(), name
    # an integral exponent is the same argument as its float
    assert synthetic.cache_entry(str(tmp_path), **{**base, "popularity_exponent": 1}) == entry


def test_the_key_covers_the_sampling_constants_and_numpy(tmp_path, monkeypatch):
    entry = synthetic.cache_entry(str(tmp_path), **KW)
    monkeypatch.setattr(synthetic, "TASTE_BOOST", 5.0)
    assert synthetic.cache_entry(str(tmp_path), **KW) != entry
    monkeypatch.undo()
    monkeypatch.setattr(synthetic, "CACHE_MIN_ROWS", 0)
    monkeypatch.setattr(np, "__version__", "0.0.1")
    assert synthetic.cache_entry(str(tmp_path), **KW) != entry


def full_arguments(**kw):
    params = inspect.signature(synthetic.generate_synthetic).parameters
    return {n: p.default for n, p in params.items() if n != "cache_dir"} | kw


def read(folder, arguments):
    """What the cache serves for ``arguments`` (generate_synthetic's, filled in)."""
    vocab = synthetic.generate_synthetic(**arguments).interactions
    return cache.read_rows(folder, synthetic.CACHE_KIND, synthetic.cache_params(**arguments),
                           user_ids=vocab.user_ids, item_ids=vocab.item_ids, source="x",
                           rating_scale=vocab.rating_scale)


def test_an_entry_with_other_parameters_in_its_meta_is_not_served(tmp_path):
    synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    arguments = full_arguments(**KW)
    assert read(tmp_path, arguments) is not None  # served as written
    entry = synthetic.cache_entry(str(tmp_path), **KW)
    meta = json.loads((entry / "meta.json").read_text())
    meta["params"]["seed"] = 5  # a key collision, or a hand-edited entry
    (entry / "meta.json").write_text(json.dumps(meta))
    assert read(tmp_path, arguments) is None


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "delete", "bad_meta", "dtype"])
def test_a_damaged_entry_is_detected_and_made_again(tmp_path, caplog, damage):
    fresh = synthetic.generate_synthetic(**KW)
    synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    entry = synthetic.cache_entry(str(tmp_path), **KW)
    target = entry / "timestamps.npy"
    data = target.read_bytes()
    if damage == "flip_byte":  # one timestamp changed: only the checksums can tell
        target.write_bytes(data[:-3] + bytes([data[-3] ^ 1]) + data[-2:])
    elif damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        target.unlink()
    elif damage == "bad_meta":
        (entry / "meta.json").write_text("{not json")
    else:  # the file holds another dtype than meta.json says
        np.save(target, np.load(target).astype(np.int64))
    with caplog.at_level(logging.WARNING, logger="bench"):
        again = synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    assert "making the rows again" in caplog.text
    assert_same(fresh, again)
    # and the entry was written again, whole: the next call reads it
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bench"):
        third = synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    assert "rows read from" in caplog.text and "making the rows again" not in caplog.text
    assert_same(fresh, third)


def test_rows_that_do_not_match_the_generators_activity_are_not_served(tmp_path, caplog):
    fresh = synthetic.generate_synthetic(**KW)
    synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    entry = synthetic.cache_entry(str(tmp_path), **KW)
    # a consistent entry (fingerprint matches its rows) whose rows are another seed's
    other = synthetic.generate_synthetic(**{**KW, "seed": 99}).interactions
    meta = json.loads((entry / "meta.json").read_text())
    cache.write_rows(tmp_path, synthetic.CACHE_KIND, meta["params"], other)
    with caplog.at_level(logging.INFO, logger="bench"):
        again = synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    assert_same(fresh, again)
    assert "rows kept in" in caplog.text  # made again and written over


def test_an_unwritable_cache_is_skipped(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="bench"):
        ds = synthetic.generate_synthetic(**KW, cache_dir=str(blocker))
    assert "could not keep" in caplog.text
    assert_same(synthetic.generate_synthetic(**KW), ds)


def test_small_data_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "CACHE_MIN_ROWS", KW["n_interactions"] + 1)
    synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    assert synthetic.cache_entry(str(tmp_path), **KW) is None
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("bad", [3, True, "", "a\x00b", ["x"]])
def test_a_bad_cache_dir_is_refused_naming_it(bad):
    with pytest.raises(ParameterError, match="cache_dir"):
        synthetic.generate_synthetic(**KW, cache_dir=bad)


def test_the_cache_folder_defaults_to_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "c"))
    assert cache.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BENCH_CACHE_DIR")
    assert cache.default_cache_dir().parts[-2:] == (".cache", "recspectrum")


def test_read_back_rows_carry_the_kept_fingerprint_without_hashing_them(tmp_path,
                                                                        monkeypatch):
    """The files' checksums prove the bytes, so the fingerprint written with them is the
    rows' own: it equals a fresh hash, and reading did not hash the rows."""
    from bench.data.interactions import Interactions

    fresh = synthetic.generate_synthetic(**KW)
    synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    meta = json.loads((synthetic.cache_entry(str(tmp_path), **KW) / "meta.json").read_text())
    assert set(meta["sha256"]) == {"users", "items", "ratings", "timestamps"}
    assert len(meta["vocabulary_sha256"]) == 64

    def no_hashing(self):
        raise AssertionError("the rows were hashed")

    monkeypatch.setattr(Interactions, "_hash", no_hashing)
    again = synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    kept = again.interactions.fingerprint()
    monkeypatch.undo()
    assert kept == meta["fingerprint"] == fresh.interactions.fingerprint()
    assert_same(fresh, again)


def test_an_entry_under_other_vocabularies_is_not_served(tmp_path):
    synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    entry = synthetic.cache_entry(str(tmp_path), **KW)
    meta = json.loads((entry / "meta.json").read_text())
    meta["vocabulary_sha256"] = "0" * 64  # ids made differently by another version
    (entry / "meta.json").write_text(json.dumps(meta))
    x = synthetic.generate_synthetic(**KW).interactions
    assert cache.read_rows(tmp_path, synthetic.CACHE_KIND, meta["params"],
                           user_ids=x.user_ids, item_ids=x.item_ids, source="s",
                           rating_scale=x.rating_scale) is None


@pytest.mark.parametrize("damage", [False, True])
def test_an_entry_without_checksums_is_checked_by_the_rows_fingerprint(tmp_path, damage):
    """Entries written before the files had checksums stay readable, checked as then."""
    fresh = synthetic.generate_synthetic(**KW)
    synthetic.generate_synthetic(**KW, cache_dir=str(tmp_path))
    entry = synthetic.cache_entry(str(tmp_path), **KW)
    meta = json.loads((entry / "meta.json").read_text())
    del meta["sha256"], meta["vocabulary_sha256"]
    (entry / "meta.json").write_text(json.dumps(meta))
    if damage:
        target = entry / "timestamps.npy"
        data = target.read_bytes()
        target.write_bytes(data[:-3] + bytes([data[-3] ^ 1]) + data[-2:])
    x = fresh.interactions
    got = cache.read_rows(tmp_path, synthetic.CACHE_KIND, meta["params"],
                          user_ids=x.user_ids, item_ids=x.item_ids, source=x.source,
                          rating_scale=x.rating_scale)
    if damage:
        assert got is None
    else:
        assert got.fingerprint() == x.fingerprint()
        np.testing.assert_array_equal(got.timestamps, x.timestamps)
