"""MLflow tracking through ``MlflowClient`` with explicit parent/child runs.

The default store is SQLite under the working directory (``mlruns/mlflow.db``, with
artifacts in ``mlruns/artifacts``): MLflow 3 refuses the old plain-folder store. Any
other tracking URI (``http://127.0.0.1:5000``, ``databricks``, ...) is one override:
``tracker.tracking_uri=...``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.errors import TrackingError

DEFAULT_DIR = Path("mlruns")


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
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self._uri())
        return self._client

    def _exp_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                self._experiment_id = self.client.create_experiment(
                    self.experiment, artifact_location=self._artifact_location()
                )
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

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

    # ------------------------------------------------------------------ runs
    def start_run(self, name, *, parent_id=None, tags=None) -> str:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_id
        run = self.client.create_run(self._exp_id(), run_name=name, tags=all_tags)
        return run.info.run_id

    def find_run(self, tag, value):
        runs = self.client.search_runs(
            [self._exp_id()],
            filter_string=f"tags.`{tag}` = '{value}'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

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
        self.client.set_terminated(run_id, status)

    def describe(self) -> str:
        uri = self._uri()
        hint = ""
        if uri.startswith("sqlite:///"):
            hint = f" (browse: mlflow ui --backend-store-uri {uri})"
        return f"MLflow experiment {self.experiment!r} at {uri}{hint}"


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
