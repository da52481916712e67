"""MLflow tracking through ``MlflowClient`` with explicit parent/child runs.

The default store is SQLite under the working directory (``mlruns/mlflow.db``, with
artifacts in ``mlruns/artifacts``): MLflow 3 refuses the old plain-folder store. Any
other tracking URI (``http://127.0.0.1:5000``, ``databricks``, ...) is one override:
``tracker.tracking_uri=...``.

Runs never stay RUNNING for good: every run is tagged with its host and process id; the
next tracker on the same host to reach the store (the next ``bench``, or ``resume=true``)
marks RUNNING runs of its experiment whose process is gone as KILLED; a run ended while
Ctrl-C propagates ends KILLED, and :func:`end_open_runs` closes whatever a process left open.
Concurrent first runs serialise the creation of a local SQLite store with a file lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import weakref
from pathlib import Path

from bench.errors import TrackingError

DEFAULT_DIR = Path("mlruns")

#: Tags naming the host and process that own a run (a RUNNING run whose process is gone
#: on this host is stale).
HOST_TAG = "recspectrum.host"
PID_TAG = "recspectrum.pid"

log = logging.getLogger(__name__)

#: Trackers of this process, for :func:`end_open_runs`.
_LIVE: weakref.WeakSet[MlflowTracker] = weakref.WeakSet()


class MlflowTracker:
    """Logs to MLflow; one experiment per ``experiment`` name."""

    def __init__(
        self,
        *,
        tracking_uri: str | None = None,
        experiment: str = "recspectrum",
        artifact_root: str | None = None,
    ):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self._client = None
        self._experiment_id: str | None = None
        self._open: list[str] = []  # runs started here and not ended yet, oldest first
        self._swept = False
        _LIVE.add(self)

    # ------------------------------------------------------------------ setup
    def _uri(self) -> str:
        if self.tracking_uri:
            return str(self.tracking_uri)
        DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(DEFAULT_DIR / 'mlflow.db').resolve()}"

    def _artifact_location(self) -> str | None:
        if self.artifact_root:
            return str(self.artifact_root)
        if self.tracking_uri:
            return None  # the server decides
        return (DEFAULT_DIR / "artifacts").resolve().as_uri()

    @property
    def client(self):
        if self._client is None:
            os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
            # a server's client would print two "View run" lines to stdout per ended run
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self._uri())
        return self._client

    def _exp_id(self) -> str:
        if self._experiment_id is None:
            with _store_lock(self._uri()):  # concurrent first runs: one creates, others wait
                exp = self.client.get_experiment_by_name(self.experiment)
                if exp is None:
                    try:
                        self._experiment_id = self.client.create_experiment(
                            self.experiment, artifact_location=self._artifact_location()
                        )
                    except Exception:  # created meanwhile by another process (a server)
                        exp = self.client.get_experiment_by_name(self.experiment)
                        if exp is None:
                            raise
                        self._experiment_id = exp.experiment_id
                else:
                    self._experiment_id = exp.experiment_id
        return self._experiment_id

    def close_stale_runs(self) -> int:
        """Mark RUNNING runs of this experiment started on this host by a process that is
        gone (SIGKILL, a crash, a full disk) as KILLED; returns how many."""
        from mlflow.entities import RunStatus

        host, stale, token = socket.gethostname(), [], None
        while True:
            page = self.client.search_runs(
                [self._exp_id()],
                filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = "
                              f"'{_quote(host)}'",
                max_results=1000, page_token=token,
            )
            stale += [r.info.run_id for r in page
                      if not _alive(r.data.tags.get(PID_TAG, ""))]
            token = page.token
            if not token:
                break
        for run_id in stale:
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
        if stale:
            log.warning("tracker: marked %d stale MLflow run(s) KILLED (left RUNNING by a "
                        "process on this host that is gone)", len(stale))
        return len(stale)

    def check(self) -> None:
        """Reach the store once before any training; a clear error if it cannot.

        A server (``http(s)://``) is probed first with one short request: MLflow's own
        client retries a refused connection with back-off for minutes before it fails.
        """
        uri = self._uri()
        if uri.startswith(("http://", "https://")):
            _probe(uri)
        try:
            self._exp_id()
        except Exception as exc:  # any backend failure becomes one clear line
            raise TrackingError(
                f"tracker: cannot reach the MLflow tracking store at {self._uri()!r} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"start the server, fix tracker.tracking_uri, or run with tracker=none"
            ) from None
        self._check_artifact_folder()
        self._sweep()

    def _check_artifact_folder(self) -> None:
        """A local artifact folder must be writable: found now, not after training."""
        import tempfile
        from urllib.parse import unquote, urlparse

        location = self.client.get_experiment(self._exp_id()).artifact_location or ""
        parsed = urlparse(location)
        if parsed.scheme not in ("", "file"):
            return  # a server or a cloud store: its own business
        folder = Path(unquote(parsed.path) if parsed.scheme else location)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise TrackingError(
                f"tracker.artifact_root: cannot write MLflow artifacts to {str(folder)!r} "
                f"({exc.strerror or type(exc).__name__}); make it writable, set "
                f"tracker.artifact_root (a new tracker.experiment name takes it), or run "
                f"with tracker=none"
            ) from None

    def _sweep(self) -> None:
        """Close stale runs once per tracker; a failure here never stops a run."""
        if self._swept:
            return
        self._swept = True
        try:
            self.close_stale_runs()
        except Exception as exc:
            log.warning("tracker: could not look for stale MLflow runs (%s: %s)",
                        type(exc).__name__, exc)

    # ------------------------------------------------------------------ runs
    def start_run(self, name, *, parent_id=None, tags=None) -> str:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        self._sweep()
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        all_tags.update({HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())})
        if parent_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_id
        run = self.client.create_run(self._exp_id(), run_name=name, tags=all_tags)
        self._open.append(run.info.run_id)
        return run.info.run_id

    def log_params(self, run_id, params) -> None:
        from mlflow.entities import Param

        items = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(self, run_id, metrics) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(str(k), float(v), now, 0) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[start : start + 1000])

    def log_artifact(self, run_id, path, artifact_path=None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def end_run(self, run_id, status="FINISHED") -> None:
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            status = "KILLED"  # ended on the way out of a Ctrl-C
        with contextlib.suppress(ValueError):
            self._open.remove(run_id)
        self.client.set_terminated(run_id, status)

    def end_open_runs(self, status: str = "KILLED") -> int:
        """End every run this tracker started and did not end (children first)."""
        ended = 0
        while self._open:
            run_id = self._open.pop()
            with contextlib.suppress(Exception):  # best effort: the store may be the fault
                self.client.set_terminated(run_id, status)
                ended += 1
        return ended

    def describe(self) -> str:
        uri = self._uri()
        hint = ""
        if uri.startswith("sqlite:///"):
            hint = f" (browse: mlflow ui --backend-store-uri {uri})"
        return f"MLflow experiment {self.experiment!r} at {uri}{hint}"


class MlflowServerTracker(MlflowTracker):
    """``tracker=mlflow_server``: a remote MLflow tracking server, artifacts through it.

    The URI must be the server's ``http(s)://`` address (``MLFLOW_TRACKING_URI`` in the
    config). The server must serve artifacts (``mlflow server --serve-artifacts``, its
    default): the experiment's artifact location is then ``mlflow-artifacts:/...`` and
    every upload goes over HTTP, so clients need no filesystem shared with the server. An
    experiment whose artifacts live on a plain path is refused before any training.
    """

    def _uri(self) -> str:
        uri = str(self.tracking_uri or "")
        if not uri.startswith(("http://", "https://")):
            raise TrackingError(
                f"tracker.tracking_uri: tracker=mlflow_server expects the tracking server's "
                f"http(s) URL, got {uri or 'nothing'!r}; set MLFLOW_TRACKING_URI (e.g. "
                "http://127.0.0.1:5000) or tracker.tracking_uri=..., or use tracker=mlflow "
                "for the local SQLite store"
            )
        return uri

    def _artifact_location(self) -> str | None:
        return str(self.artifact_root) if self.artifact_root else None  # the server decides

    def check(self) -> None:
        super().check()
        location = self.client.get_experiment(self._exp_id()).artifact_location or ""
        if _is_local_path(location):
            raise TrackingError(
                f"tracker.tracking_uri: MLflow experiment {self.experiment!r} on "
                f"{self._uri()!r} keeps its artifacts at {location!r}, a path on the "
                "server's disk this client cannot upload to; start the server with "
                "--serve-artifacts (new experiments then take mlflow-artifacts:/), pick "
                "another tracker.experiment, or use tracker=mlflow with "
                "tracker.tracking_uri=... on a machine that shares that path"
            )

    def describe(self) -> str:
        return f"MLflow experiment {self.experiment!r} on the tracking server {self._uri()}"


def _is_local_path(location: str) -> bool:
    """Whether an artifact location is a plain path (``/x``, ``file:///x``): only readable
    where that filesystem is mounted."""
    from urllib.parse import urlparse

    scheme = urlparse(location).scheme
    return scheme in ("", "file") or len(scheme) == 1  # one letter: a Windows drive


def end_open_runs(status: str = "KILLED") -> int:
    """End the runs every MLflow tracker of this process left open (Ctrl-C: ``KILLED``;
    an error: ``FAILED``); returns how many."""
    return sum(t.end_open_runs(status) for t in list(_LIVE))


def _alive(pid: str) -> bool:
    """Whether process ``pid`` of this host still runs (unknown pids count as alive)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, OSError):  # no pid tag, or alive under another user
        return True
    return True


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


@contextlib.contextmanager
def _store_lock(uri: str):
    """An exclusive lock next to a local SQLite store (``<db>.lock``) while it is created
    and migrated; nothing for other stores."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or ":memory:" in uri:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    db = Path(uri[len(prefix):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


#: Seconds the reachability probe of a tracking server may take.
PROBE_TIMEOUT_S = 5.0


def _probe(uri: str) -> None:
    """One GET of ``<uri>/health`` (any HTTP answer means the server is there)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return  # it answered: reachable (authentication and paths are MLflow's business)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"tracker.tracking_uri: cannot reach the MLflow tracking server at {uri!r} "
            f"({reason}); start it (e.g. mlflow server --host 127.0.0.1 --port 5000), fix "
            "tracker.tracking_uri, or run with tracker=none"
        ) from None
