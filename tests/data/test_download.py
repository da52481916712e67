"""download_dataset against a local HTTP server (127.0.0.1, ephemeral port): never the internet."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from bench.data import download
from bench.data.download import DATASETS, download_dataset
from bench.data.movielens import load_ml_100k
from bench.errors import ConfigError, DownloadError
from tests.helpers import ROOT

FAKE_FILES = {
    "u.data": "1\t10\t5\t881250949\n2\t10\t3\t881250950\n",
    "u.item": "10|Made Up (1999)|01-Jan-1999||http://x|0|1\n",
    "u.genre": "unknown|0\nAction|1\n\n",
    "u.user": "1|30|F|artist|12345\n2|40|M|other|54321\n",
    "README": "fake release for tests\n",
}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve ``tmp_path/www`` on 127.0.0.1; yield (folder, base_url, request log)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_manifest(tmp_path, monkeypatch):
    """Fake archives do not match the real manifests: the manifest lookup sees a package
    (wheel layout) whose ``ml-100k.sha256`` lists the fake release's README only."""
    package = tmp_path / "site" / "bench"
    folder = package / "datasets"
    folder.mkdir(parents=True)
    readme = hashlib.sha256(FAKE_FILES["README"].encode()).hexdigest()
    (folder / "ml-100k.sha256").write_text(f"{readme}  README\n")
    monkeypatch.setattr(download, "PACKAGE_DIR", package)
    return folder


def make_zip(files: dict[str, str] = FAKE_FILES, prefix: str = "ml-100k/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(prefix + name, text)
    return buf.getvalue()


def publish(root: Path, data: bytes, md5: str | None = None, name: str = "ml-100k.zip"):
    (root / name).write_bytes(data)
    digest = md5 or hashlib.md5(data).hexdigest()
    (root / f"{name}.md5").write_text(f"{digest}  {name}\n")


def leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.name != "ml-100k")


def test_happy_path_unpacks_and_loads(server, tmp_path, capsys):
    root, base, requests = server
    publish(root, make_zip())
    data_dir = tmp_path / "data"
    out = download_dataset("ml-100k", data_dir, base_url=base)
    assert out == data_dir / "ml-100k"
    assert (out / "u.data").read_text() == FAKE_FILES["u.data"]
    assert leftovers(data_dir) == []  # no zip, no temp folder
    assert requests == ["/ml-100k.zip.md5", "/ml-100k.zip"]
    assert "downloading ml-100k.zip" in capsys.readouterr().err
    assert len(load_ml_100k(path=out).interactions) == 2


def test_present_dataset_is_not_downloaded_again_unless_forced(server, tmp_path, capsys):
    root, base, requests = server
    publish(root, make_zip())
    data_dir = tmp_path / "data"
    download_dataset("ml_100k", data_dir, base_url=base, progress=False)
    assert capsys.readouterr().err == ""
    (data_dir / "ml-100k" / "u.data").write_text("edited\n")
    download_dataset("ml-100k", data_dir, base_url=base)
    assert len(requests) == 2
    download_dataset("ml-100k", data_dir, base_url=base, force=True, progress=False)
    assert len(requests) == 4
    assert (data_dir / "ml-100k" / "u.data").read_text() == FAKE_FILES["u.data"]
    assert leftovers(data_dir) == []


def test_md5_mismatch_is_refused_and_the_file_deleted(server, tmp_path):
    root, base, _ = server
    publish(root, make_zip(), md5="0" * 32)
    data_dir = tmp_path / "data"
    with pytest.raises(DownloadError) as info:
        download_dataset("ml-100k", data_dir, base_url=base, progress=False)
    msg = str(info.value)
    assert "MD5 checksum mismatch" in msg and f"expected {'0' * 32}" in msg
    assert f"got {hashlib.md5(make_zip()).hexdigest()}" in msg
    assert list(data_dir.iterdir()) == []


def test_bsd_style_md5_file_is_understood(server, tmp_path):
    root, base, _ = server
    data = make_zip()
    publish(root, data)
    (root / "ml-100k.zip.md5").write_text(f"MD5 (ml-100k.zip) = {hashlib.md5(data).hexdigest()}\n")
    assert download_dataset("ml-100k", tmp_path / "d", base_url=base, progress=False).is_dir()


def test_truncated_zip_is_refused(server, tmp_path):
    root, base, _ = server
    publish(root, make_zip()[:200])  # md5 of the truncated bytes: only the zip check can fail
    data_dir = tmp_path / "data"
    with pytest.raises(DownloadError, match="truncated or corrupt zip"):
        download_dataset("ml-100k", data_dir, base_url=base, progress=False)
    assert list(data_dir.iterdir()) == []


def test_corrupt_member_is_refused(server, tmp_path):
    root, base, _ = server
    data = bytearray(make_zip({"u.data": "x" * 5000}))
    data[60] ^= 0xFF  # inside the compressed member
    publish(root, bytes(data))
    with pytest.raises(DownloadError, match=r"corrupt zip|truncated or corrupt"):
        download_dataset("ml-100k", tmp_path / "data", base_url=base, progress=False)


def test_path_traversal_is_refused(server, tmp_path):
    root, base, _ = server
    publish(root, make_zip({**FAKE_FILES, "../../escape.txt": "gotcha"}))
    data_dir = tmp_path / "deep" / "data"
    with pytest.raises(DownloadError, match="outside"):
        download_dataset("ml-100k", data_dir, base_url=base, progress=False)
    assert not list(tmp_path.rglob("escape.txt"))
    assert list(data_dir.iterdir()) == []


def test_archive_without_expected_files(server, tmp_path):
    root, base, _ = server
    publish(root, make_zip({"u.data": "1\t2\t3\t4\n"}))
    with pytest.raises(DownloadError, match=r"does not contain the expected files"):
        download_dataset("ml-100k", tmp_path / "data", base_url=base, progress=False)


def test_sha256_manifest_is_checked(server, tmp_path, no_manifest):
    root, base, _ = server
    publish(root, make_zip())
    good = hashlib.sha256(FAKE_FILES["u.data"].encode()).hexdigest()
    (no_manifest / "ml-100k.sha256").write_text(f"{good}  u.data\n{'f' * 64}  u.user\n")
    with pytest.raises(DownloadError, match=rf"u.user: SHA-256 mismatch: expected {'f' * 64}"):
        download_dataset("ml-100k", tmp_path / "data", base_url=base, progress=False)
    assert list((tmp_path / "data").iterdir()) == []
    (no_manifest / "ml-100k.sha256").write_text(f"{good}  u.data\n")
    assert download_dataset("ml-100k", tmp_path / "data", base_url=base, progress=False)


def test_repository_manifest_rejects_fake_ml_100k(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "PACKAGE_DIR", ROOT / "bench")
    root, base, _ = server
    publish(root, make_zip())
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download_dataset("ml-100k", tmp_path / "data", base_url=base, progress=False)


def test_missing_files_on_server(server, tmp_path):
    _, base, _ = server
    with pytest.raises(DownloadError, match=r"ml-100k.zip.md5: HTTP 404"):
        download_dataset("ml-100k", tmp_path / "data", base_url=base, progress=False)


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(ConfigError) as info:
        download_dataset("ml-7b", tmp_path)
    for name in DATASETS:
        assert name in str(info.value)


def test_registry_points_at_grouplens():
    for name, spec in DATASETS.items():
        assert spec.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
        assert spec.folder == name and spec.files
