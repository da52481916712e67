"""The PostgreSQL-backed MLflow tracking server the ``tracker=mlflow_server`` tests log to.

One server per test module: a fresh PostgreSQL cluster (``tests/tracking/server.py``), a
database on it, and ``mlflow server`` with served artifacts, all on 127.0.0.1 and torn
down afterwards. Without PostgreSQL or psycopg2 the tests skip, naming what is missing;
with ``BENCH_REQUIRE_SERVER_TESTS=1`` (set by ``.ci/run``) they fail instead, so CI never
passes without running them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tracking.server import Rest, missing, mlflow_server, postgres

#: ``1``: a server test that would skip fails instead (CI sets it).
REQUIRE = "BENCH_REQUIRE_SERVER_TESTS"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when the environment requires the server tests."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: the server tests must run here)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Server:
    uri: str
    backend: str
    artifacts: Path
    rest: Rest


@pytest.fixture(scope="module")
def mlflow_pg_server(tmp_path_factory):
    reason = missing()
    if reason:
        skip_or_fail(reason)
    artifacts = tmp_path_factory.mktemp("mlflow-server") / "artifacts"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("no_proxy", "127.0.0.1,localhost")  # the MLflow client honours proxies
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        with postgres() as backend, mlflow_server(backend, artifacts) as uri:
            yield Server(uri=uri, backend=backend, artifacts=artifacts, rest=Rest(uri))
