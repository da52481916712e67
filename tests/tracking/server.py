"""A throwaway PostgreSQL cluster and an MLflow tracking server on it, and a plain-HTTP
reader of that server's REST API, for the ``tracker=mlflow_server`` tests.

:func:`postgres` runs ``initdb`` into a temporary folder and starts the cluster with
``pg_ctl`` on a free port of 127.0.0.1 (as the ``postgres`` user, or ``nobody``, when the
tests run as root: PostgreSQL refuses root). :func:`mlflow_server` starts
``mlflow server`` on it with served artifacts on another free port. Both tear everything
down on exit. :func:`missing` says what is not installed (the fixture skips, or fails in
CI, naming it).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

#: Where PostgreSQL's server programs are looked for, after ``BENCH_PG_BIN`` and PATH.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: Database role and database the tests use (trust authentication, 127.0.0.1 only).
PG_ROLE = "bench"
PG_DB = "mlflow"
#: Environment of ``mlflow server``: no job runner (MLflow's GenAI jobs: a third process
#: that costs a core-second a minute here and is slow to stop).
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
#: Seconds ``mlflow server`` may take to answer ``/health`` (a fresh database is migrated).
SERVER_START_TIMEOUT_S = 180.0


def pg_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: ``BENCH_PG_BIN``, PATH, then Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first)."""
    env = os.environ.get("BENCH_PG_BIN")
    candidates = [Path(env)] if env else []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def missing() -> str | None:
    """What the server tests lack on this machine, or None when they can run."""
    if pg_bin_dir() is None:
        return ("PostgreSQL server programs (initdb, pg_ctl) not found: apt-get install "
                "postgresql, or set BENCH_PG_BIN")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: pip install -e '.[server]'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs under when we are root (it refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 with database ``mlflow``; yields its
    SQLAlchemy URL (``postgresql+psycopg2://bench@127.0.0.1:<port>/mlflow``; the driver is
    named because SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3)."""
    import psycopg2

    bin_dir = pg_bin_dir()
    assert bin_dir is not None, missing()
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    account = _run_as()
    as_user = {}
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data, logfile = root / "data", root / "server.log"

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=root, capture_output=True,
                              text=True, timeout=120, **as_user)

    started = False
    try:
        done = pg("initdb", "-D", str(data), "-U", PG_ROLE, "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        assert done.returncode == 0, done.stderr
        for _attempt in range(3):  # a free port may be taken before the server binds it
            port = free_port()
            opts = f"-h 127.0.0.1 -p {port} -k {root} -F"
            done = pg("pg_ctl", "-D", str(data), "-l", str(logfile), "-w", "-t", "60",
                      "-o", opts, "start")
            if done.returncode == 0:
                started = True
                break
        assert started, f"pg_ctl start failed: {done.stderr}\n{_tail(logfile)}"
        conn = psycopg2.connect(host="127.0.0.1", port=port, user=PG_ROLE, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {PG_DB}")
        conn.close()
        yield f"postgresql+psycopg2://{PG_ROLE}@127.0.0.1:{port}/{PG_DB}"
    finally:
        if started:
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def server_command(backend_uri: str, artifacts: Path, port: int, workers: int) -> list[str]:
    """The ``mlflow server`` command line the tests start."""
    return [sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend_uri,
            "--serve-artifacts", "--artifacts-destination", artifacts.as_uri(),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, workers: int = 2) -> Iterator[str]:
    """``mlflow server`` on ``backend_uri`` serving artifacts from ``artifacts``, on a free
    port of 127.0.0.1; yields its URL once ``/health`` answers. Stopped (its whole process
    group) on exit."""
    artifacts.mkdir(parents=True, exist_ok=True)
    port = free_port()
    logfile = artifacts.parent / f"mlflow-server-{port}.log"
    with open(logfile, "w") as log:
        proc = subprocess.Popen(server_command(backend_uri, artifacts, port, workers),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=artifacts.parent, env={**os.environ, **SERVER_ENV})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n"
                                   f"{_tail(logfile)}")
            with contextlib.suppress(OSError):
                with _opener().open(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer in {SERVER_START_TIMEOUT_S}s:"
                                   f"\n{_tail(logfile)}")
            time.sleep(0.3)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _tail(path: Path, n: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


def _opener() -> urllib.request.OpenerDirector:
    """An opener that ignores proxy variables: the server is on 127.0.0.1."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ------------------------------------------------------------------- the REST API, read back
class Rest:
    """Plain HTTP reads of a tracking server's REST API (no MLflow client involved)."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.opener = _opener()

    def get(self, route: str, **query) -> dict:
        url = f"{self.uri}{route}?{urllib.parse.urlencode(query)}"
        with self.opener.open(url, timeout=60) as r:
            return json.loads(r.read())

    def post(self, route: str, body: dict) -> dict:
        req = urllib.request.Request(f"{self.uri}{route}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with self.opener.open(req, timeout=60) as r:
            return json.loads(r.read())

    def experiment_id(self, name: str) -> str:
        got = self.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name=name)
        return got["experiment"]["experiment_id"]

    def experiment(self, name: str) -> dict:
        return self.get("/api/2.0/mlflow/experiments/get-by-name",
                        experiment_name=name)["experiment"]

    def runs(self, experiment: str) -> dict[str, dict]:
        """Every run of experiment ``experiment`` (by name), by run id, all pages."""
        exp_id, out, token = self.experiment_id(experiment), {}, None
        while True:
            body = {"experiment_ids": [exp_id], "max_results": 1000, "run_view_type": "ALL"}
            if token:
                body["page_token"] = token
            page = self.post("/api/2.0/mlflow/runs/search", body)
            out.update({r["info"]["run_id"]: r for r in page.get("runs", [])})
            token = page.get("next_page_token")
            if not token:
                return out

    def metric_history(self, run_id: str, key: str) -> list[float]:
        """Every value logged under ``key`` (all pages), in step/timestamp order."""
        values, token = [], None
        while True:
            query = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                query["page_token"] = token
            page = self.get("/api/2.0/mlflow/metrics/get-history", **query)
            values += [_number(m["value"]) for m in page.get("metrics", [])]
            token = page.get("next_page_token")
            if not token:
                return values

    def artifacts(self, run_id: str, path: str = "") -> dict[str, int]:
        """Every artifact file of a run, listed recursively: relative path -> size."""
        query = {"run_id": run_id, **({"path": path} if path else {})}
        out: dict[str, int] = {}
        for f in self.get("/api/2.0/mlflow/artifacts/list", **query).get("files", []):
            if f.get("is_dir"):
                out.update(self.artifacts(run_id, f["path"]))
            else:
                out[f["path"]] = int(f.get("file_size", 0))
        return out

    def artifact_bytes(self, run_id: str, path: str) -> bytes:
        query = urllib.parse.urlencode({"run_id": run_id, "path": path})
        with self.opener.open(f"{self.uri}/get-artifact?{query}", timeout=60) as r:
            return r.read()


def _number(value) -> float:
    """A metric value as the REST API sends it (NaN and infinities come as strings)."""
    return float(value)


def kv(items: list[dict] | None) -> dict[str, str]:
    """A run's ``params`` or ``tags`` list as a mapping."""
    return {i["key"]: i["value"] for i in items or []}

