"""Fetching the official MovieLens zips from GroupLens, checked and unpacked atomically.

:data:`DATASETS` names every release the loaders know. :func:`download_dataset` fetches
``<base_url>/<zip>`` and the ``<zip>.md5`` GroupLens publishes beside it, refuses the zip
unless the MD5 matches, checks every member stays inside the target folder, unpacks into
a temporary folder next to the target, verifies the per-file SHA-256 sums of the release's
manifest ``<folder>.sha256`` (for the releases that declare one, :attr:`DatasetSpec.sha256`),
and only then renames the folder into place. A failed download never leaves a half-written
dataset behind.

The manifests are package data, found the way ``bench.cli.config_dir`` finds the configs:
``bench/datasets/`` in an installed wheel (``pyproject.toml`` force-includes the repository's
``datasets/*.sha256`` there), else the checkout's ``datasets/`` (:func:`manifest_dirs`). A
release that declares a manifest is refused when none is found: an incomplete install never
falls back to the MD5 alone.

Only the standard library is used for HTTP (``urllib``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError, DownloadError

log = logging.getLogger(__name__)

BASE_URL = "https://files.grouplens.org/datasets/movielens"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The ``bench`` package folder; :func:`manifest_dirs` looks beside and above it."""
CHUNK = 1 << 20
TIMEOUT = 60.0


@dataclass(frozen=True)
class DatasetSpec:
    """One downloadable release.

    Attributes:
        zip_name: the archive's file name under the base URL.
        folder: the folder the archive unpacks to (and the loaders read).
        files: files a loader needs; their absence means the folder is incomplete.
        optional: files read when present.
        sha256: the package ships ``<folder>.sha256`` for this release; it is never
            installed without checking it. Releases without one are checked by MD5 only.
    """

    zip_name: str
    folder: str
    files: tuple[str, ...]
    optional: tuple[str, ...] = ()
    sha256: bool = False

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.zip_name}"


_LATEST = ("ratings.csv", "movies.csv")
DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        "ml-100k.zip", "ml-100k", ("u.data", "u.item", "u.user", "u.genre"), sha256=True
    ),
    "ml-1m": DatasetSpec("ml-1m.zip", "ml-1m", ("ratings.dat", "movies.dat", "users.dat")),
    "ml-latest-small": DatasetSpec(
        "ml-latest-small.zip", "ml-latest-small", _LATEST, ("tags.csv",), sha256=True
    ),
    "ml-25m": DatasetSpec("ml-25m.zip", "ml-25m", _LATEST, ("tags.csv",)),
    "ml-32m": DatasetSpec("ml-32m.zip", "ml-32m", _LATEST, ("tags.csv",)),
}


def canonical_name(name: str) -> str:
    """``ml_25m`` and ``ML-25M`` both mean ``ml-25m``; raises ``ConfigError`` if unknown."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ConfigError(f"dataset name: expected one of {sorted(DATASETS)}, got {name!r}")
    return key


def download_dataset(
    name: str,
    data_dir: str | Path,
    *,
    base_url: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download, verify and unpack dataset ``name`` into ``data_dir/<folder>``.

    Args:
        name: a key of :data:`DATASETS` (``-`` or ``_`` spelling).
        data_dir: the directory holding datasets (what ``BENCH_DATA_DIR`` points to).
        base_url: where the zip and its ``.md5`` are fetched from (default GroupLens).
        force: download again even if the folder already has the expected files.
        progress: write a one-line progress indicator to stderr.

    Returns:
        The unpacked dataset folder.

    Raises:
        ConfigError: unknown ``name``.
        DownloadError: network failure, checksum mismatch (the bad file is deleted),
            a truncated or corrupt zip, or a member that would unpack outside the folder.
    """
    key = canonical_name(name)
    spec = DATASETS[key]
    data_dir = Path(data_dir).expanduser()
    target = data_dir / spec.folder
    if not force and all((target / f).is_file() for f in spec.files):
        log.info("%s already present in %s; not downloading", key, target)
        return target
    sums = release_sums(spec)  # before any byte is fetched: an incomplete install fails fast
    data_dir.mkdir(parents=True, exist_ok=True)
    base = (base_url or BASE_URL).rstrip("/")
    zip_url = f"{base}/{spec.zip_name}"

    expected_md5 = _parse_md5(_fetch_text(zip_url + ".md5"), zip_url + ".md5")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.zip_name}.", suffix=".part", dir=data_dir)
    os.close(fd)
    zip_path = Path(tmp_name)
    unpack_dir: Path | None = None
    try:
        got_md5 = _fetch_file(zip_url, zip_path, progress=progress)
        if got_md5 != expected_md5:
            raise DownloadError(
                f"{zip_url}: MD5 checksum mismatch: expected {expected_md5}, got {got_md5}; "
                f"the downloaded file was deleted. Retry, or download it by hand and unpack "
                f"it into {target}"
            )
        unpack_dir = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.", dir=data_dir))
        root = _unpack(zip_path, unpack_dir, spec, zip_url)
        _verify_sums(root, spec, sums)
        _move_into_place(root, target)
    finally:
        zip_path.unlink(missing_ok=True)
        if unpack_dir is not None and unpack_dir.exists():
            shutil.rmtree(unpack_dir, ignore_errors=True)
    log.info("%s unpacked into %s", key, target)
    return target


# ---------------------------------------------------------------------- HTTP
def _open(url: str):
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None


def _fetch_text(url: str) -> str:
    with _open(url) as resp:
        try:
            return resp.read(1 << 16).decode("utf-8", errors="replace")
        except OSError as exc:
            raise DownloadError(f"{url}: download interrupted ({exc})") from None


def _parse_md5(text: str, url: str) -> str:
    """Accept ``<hash>  file`` (md5sum) and ``MD5 (file) = <hash>`` (BSD) layouts."""
    found = re.findall(r"\b[0-9a-fA-F]{32}\b", text)
    if len(found) != 1:
        raise DownloadError(
            f"{url}: expected a published MD5 checksum (32 hex digits), got {text[:80]!r}"
        )
    return found[0].lower()


def _fetch_file(url: str, dest: Path, *, progress: bool) -> str:
    """Stream ``url`` into ``dest``; return its MD5 (hex)."""
    md5 = hashlib.md5()
    done = 0
    with _open(url) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        try:
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                md5.update(chunk)
                done += len(chunk)
                if progress:
                    _show_progress(_dest_name(url), done, total)
        except OSError as exc:  # includes http.client.IncompleteRead
            raise DownloadError(f"{url}: download interrupted after {done} bytes ({exc})") from None
    if progress:
        sys.stderr.write("\n")
        sys.stderr.flush()
    if total and done != total:
        raise DownloadError(f"{url}: truncated download: expected {total} bytes, got {done}")
    return md5.hexdigest()


def _dest_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _show_progress(name: str, done: int, total: int) -> None:
    mb = done / 1e6
    if total:
        line = f"\rdownloading {name}: {mb:.1f} / {total / 1e6:.1f} MB ({100 * done // total}%)"
    else:
        line = f"\rdownloading {name}: {mb:.1f} MB"
    sys.stderr.write(line)
    sys.stderr.flush()


# ---------------------------------------------------------------------- unpacking
def _unpack(zip_path: Path, dest: Path, spec: DatasetSpec, url: str) -> Path:
    """Extract into ``dest``; return the folder holding the dataset's files."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"{url}: corrupt zip: member {bad!r} fails its CRC check")
            root = dest.resolve()
            for info in zf.infolist():
                member = info.filename
                resolved = (root / member).resolve()
                if (
                    member.startswith(("/", "\\"))
                    or ".." in Path(member).parts
                    or not resolved.is_relative_to(root)
                ):
                    raise DownloadError(
                        f"{url}: refusing to unpack: member {member!r} would be written "
                        f"outside {dest}"
                    )
            zf.extractall(dest)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise DownloadError(f"{url}: truncated or corrupt zip ({exc})") from None
    for candidate in (dest / spec.folder, dest):
        if all((candidate / f).is_file() for f in spec.files):
            return candidate
    raise DownloadError(
        f"{url}: the archive does not contain the expected files {list(spec.files)} "
        f"(in a '{spec.folder}/' folder)"
    )


def manifest_dirs() -> list[Path]:
    """Where ``<folder>.sha256`` manifests are looked for, in order: the installed wheel's
    ``bench/datasets/``, then the checkout's ``datasets/``."""
    return [PACKAGE_DIR / "datasets", PACKAGE_DIR.parent / "datasets"]


def manifest_path(folder: str) -> Path | None:
    """The first ``<folder>.sha256`` in :func:`manifest_dirs`, or None."""
    for d in manifest_dirs():
        if (d / f"{folder}.sha256").is_file():
            return d / f"{folder}.sha256"
    return None


def parse_manifest(path: Path) -> dict[str, str]:
    """``sha256sum`` lines (``<64 hex>  [*]name``) of ``path``; blank lines are skipped.

    Raises:
        DownloadError: a line that is not a checksum line (a damaged manifest checks nothing).
    """
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            raise DownloadError(
                f"{path}: line {number}: expected '<64 hex digits>  <file name>', got {line[:80]!r}"
            )
        sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def release_sums(spec: DatasetSpec) -> dict[str, str]:
    """The SHA-256 sums a download of ``spec`` must match (empty: MD5 only, logged).

    Raises:
        DownloadError: ``spec`` declares a manifest and none is found, or it lists nothing.
    """
    if not spec.sha256:
        log.warning("%s: no SHA-256 manifest is published for this release; only the MD5 "
                    "GroupLens publishes is checked", spec.folder)
        return {}
    path = manifest_path(spec.folder)
    if path is None:
        raise DownloadError(
            f"{spec.zip_name}: checksum manifest {spec.folder}.sha256 not found in "
            f"{[str(d) for d in manifest_dirs()]}; refusing to install unverified files "
            f"(the install is incomplete: reinstall recspectrum)"
        )
    sums = parse_manifest(path)
    if not sums:
        raise DownloadError(
            f"{path}: expected SHA-256 lines for {spec.zip_name}, got an empty manifest; "
            f"refusing to install unverified files"
        )
    return sums


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verify_sums(root: Path, spec: DatasetSpec, sums: dict[str, str]) -> None:
    for name, expected in sums.items():
        path = root / name
        if not path.is_file():
            raise DownloadError(
                f"{spec.zip_name}: {name} is listed in the manifest {spec.folder}.sha256 "
                f"but missing from the archive; nothing was installed"
            )
        got = sha256_file(path)
        if got != expected:
            raise DownloadError(
                f"{spec.zip_name}: {name}: SHA-256 mismatch: expected {expected}, got {got}; "
                f"nothing was installed"
            )


def _move_into_place(root: Path, target: Path) -> None:
    """Rename ``root`` to ``target``; an existing ``target`` is replaced only after."""
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    try:
        os.replace(root, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
