"""The SHA-256 manifests travel with the package (issue 15, point 6).

A wheel used to ship no ``datasets/*.sha256``: an installed ``bench data download`` then
skipped the SHA-256 check and installed a tampered archive whose ``.md5`` matched, while
the checkout refused it. These tests build the wheel and check the manifests are inside,
run the download in the wheel's own layout, simulate both layouts by pointing the lookup
at temporary folders, and show a missing or damaged manifest is a refusal (one line,
exit 2), never a skip. Downloads come from a local HTTP server (``tests/data/test_download``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import download
from bench.data.download import DATASETS, download_dataset
from bench.errors import DownloadError
from tests.data.test_download import FAKE_FILES, make_zip, publish, server
from tests.helpers import ROOT

__all__ = ["server"]  # the local HTTP server fixture, shared with test_download

MANIFESTS = sorted(p.name for p in (ROOT / "datasets").glob("*.sha256"))


def wheel_layout(tmp_path: Path) -> Path:
    """site-packages with bench/datasets/*.sha256 and an unrelated top-level ``datasets``."""
    package = tmp_path / "site" / "bench"
    (package / "datasets").mkdir(parents=True)
    for name in MANIFESTS:
        shutil.copy(ROOT / "datasets" / name, package / "datasets" / name)
    (tmp_path / "site" / "datasets").mkdir()  # e.g. another distribution's package
    (tmp_path / "site" / "datasets" / "__init__.py").write_text("")
    return package


def checkout_layout(tmp_path: Path) -> Path:
    """A repository: bench/ without manifests, datasets/*.sha256 beside it."""
    package = tmp_path / "repo" / "bench"
    package.mkdir(parents=True)
    (tmp_path / "repo" / "datasets").mkdir()
    for name in MANIFESTS:
        shutil.copy(ROOT / "datasets" / name, tmp_path / "repo" / "datasets" / name)
    return package


LAYOUTS = {"wheel": wheel_layout, "checkout": checkout_layout}


def tampered(root: Path) -> None:
    """A fake ml-100k release with a matching .md5 (so only the SHA-256 check can catch it)."""
    publish(root, make_zip())


def one_line_error(capsys) -> str:
    """The one ``bench: error:`` line (a progress line may precede it), no traceback."""
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("bench: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# ---------------------------------------------------------------------- packaging
def test_pyproject_force_includes_every_manifest_into_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert MANIFESTS, "the repository ships no manifests"
    for name in MANIFESTS:
        assert included.get(f"datasets/{name}") == f"bench/datasets/{name}", name
    assert not any(k.rstrip("/") == "datasets" for k in included), "never the data folder"


def test_every_release_that_declares_a_manifest_has_one_and_vice_versa():
    declared = sorted(f"{s.folder}.sha256" for s in DATASETS.values() if s.sha256)
    assert declared == MANIFESTS


@pytest.mark.slow
def test_built_wheel_holds_the_manifests_and_refuses_a_tampered_download(server, tmp_path):
    out = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    if build.returncode != 0 and "build dependencies" in build.stderr:  # no index reachable
        pytest.skip(f"cannot fetch the build backend (hatchling): {build.stderr.strip()[-200:]}")
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("recspectrum-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in MANIFESTS:
            member = f"bench/datasets/{name}"
            assert member in names, sorted(n for n in names if "datasets" in n)
            assert zf.read(member) == (ROOT / "datasets" / name).read_bytes()
        assert not [n for n in names if n.startswith("bench/datasets/")
                    and not n.endswith(".sha256")], "only manifests, never data"
        site = tmp_path / "site"
        zf.extractall(site)

    # the unpacked wheel is the install: bench comes from it, not from the checkout
    root, base, _ = server
    tampered(root)
    data_dir = tmp_path / "data"
    code = (
        "import sys; from bench.data import download; "
        f"assert str(download.PACKAGE_DIR) == {str((site / 'bench').resolve())!r}; "
        "from bench.cli import main; "
        f"sys.exit(main(['data', 'download', 'ml-100k', '--data-dir', {str(data_dir)!r}, "
        f"'--base-url', {base!r}]))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "no_proxy": "127.0.0.1,localhost"}
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(var, None)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    err = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert err[-1].startswith("bench: error: ml-100k.zip: ") and "SHA-256 mismatch" in err[-1]
    assert not (data_dir / "ml-100k").exists()


# ---------------------------------------------------------------------- both layouts
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_tampered_download_is_refused_in_both_layouts(layout, server, tmp_path, monkeypatch,
                                                      capsys):
    monkeypatch.setattr(download, "PACKAGE_DIR", LAYOUTS[layout](tmp_path))
    root, base, _ = server
    tampered(root)
    data_dir = tmp_path / "data"
    mismatch = r"ml-100k\.zip: \w+: SHA-256 mismatch: expected [0-9a-f]{64}, got "
    with pytest.raises(DownloadError, match=mismatch):
        download_dataset("ml-100k", data_dir, base_url=base, progress=False)
    assert list(data_dir.iterdir()) == []

    args = ["data", "download", "ml-100k", "--data-dir", str(data_dir), "--base-url", base]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert err.startswith("bench: error: ml-100k.zip: ") and "SHA-256 mismatch" in err
    assert list(data_dir.iterdir()) == []


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_matching_download_is_installed_in_both_layouts(layout, server, tmp_path, monkeypatch):
    package = LAYOUTS[layout](tmp_path)
    monkeypatch.setattr(download, "PACKAGE_DIR", package)
    manifest = download.manifest_path("ml-100k")
    assert manifest is not None and manifest.is_relative_to(tmp_path)
    sums = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in FAKE_FILES.items()}
    manifest.write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
    root, base, _ = server
    publish(root, make_zip())
    out = download_dataset("ml-100k", tmp_path / "data", base_url=base, progress=False)
    assert (out / "u.data").read_text() == FAKE_FILES["u.data"]


# ---------------------------------------------------------------------- missing or damaged
def test_missing_manifest_is_a_refusal_before_anything_is_fetched(server, tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.setattr(download, "PACKAGE_DIR", tmp_path / "site" / "bench")  # no manifests
    root, base, requests = server
    tampered(root)
    data_dir = tmp_path / "data"
    args = ["data", "download", "ml-100k", "--data-dir", str(data_dir), "--base-url", base]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "checksum manifest ml-100k.sha256 not found in" in err
    assert "refusing to install unverified files" in err
    assert requests == []
    assert not data_dir.exists() or list(data_dir.iterdir()) == []


@pytest.mark.parametrize("text", ["", "\n\n", "not a checksum\n", f"{'a' * 63}  u.data\n"])
def test_damaged_manifest_is_a_refusal(text, server, tmp_path, monkeypatch, capsys):
    package = wheel_layout(tmp_path)
    (package / "datasets" / "ml-100k.sha256").write_text(text)
    monkeypatch.setattr(download, "PACKAGE_DIR", package)
    root, base, requests = server
    tampered(root)
    args = ["data", "download", "ml-100k", "--data-dir", str(tmp_path / "d"), "--base-url", base]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "ml-100k.sha256" in err and ("empty manifest" in err or "line 1: expected" in err)
    assert requests == []


def test_release_without_a_manifest_says_only_the_md5_was_checked(server, tmp_path, monkeypatch,
                                                                  caplog):
    monkeypatch.setattr(download, "PACKAGE_DIR", wheel_layout(tmp_path))
    files = {"ratings.dat": "1::10::5::978300760\n", "movies.dat": "10::Made Up (1999)::Drama\n",
             "users.dat": "1::F::1::10::48067\n"}
    root, base, _ = server
    publish(root, make_zip(files, prefix="ml-1m/"), name="ml-1m.zip")
    with caplog.at_level("WARNING", logger="bench.data.download"):
        out = download_dataset("ml-1m", tmp_path / "data", base_url=base, progress=False)
    assert (out / "ratings.dat").is_file()
    assert "only the MD5 GroupLens publishes is checked" in caplog.text
