"""Sandbox -> tap -> a real Singer target process -> PostgreSQL: by pipe, by meltano run, the demo."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from tap_bayut.sandbox import data
from tap_bayut.sandbox.demo import postgres, query
from tests.conftest import (
    SANDBOX_KEY,
    TARGETED_ROUTES,
    control,
    expected,
    expected_targeted,
    got,
    got_targeted,
)

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
#: Generous bounds, so a hung process fails the test instead of hanging the suite.
TIMEOUT = 300


@pytest.fixture
def meltano_env(tmp_path) -> dict[str, str]:
    """Meltano's environment: its own state database, nothing inherited from this shell's settings."""
    plugins = [
        ROOT / ".meltano" / "extractors" / "tap-bayut",
        ROOT / ".meltano" / "loaders" / "target-postgres",
    ]
    missing = [str(p.relative_to(ROOT)) for p in plugins if not p.exists()]
    # Installing needs the package index; the tests only talk to loopback, so .ci/run installs.
    assert not missing, f"run `.venv/bin/meltano install` first (missing {', '.join(missing)})"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_BAYUT_", "TARGET_POSTGRES_", "MELTANO_"))
    }
    return {
        **env,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
    }


@pytest.fixture(scope="module")
def database() -> t.Iterator[str]:
    """A throw-away PostgreSQL for this module, its server time zone pinned to UTC."""
    with postgres() as url:
        yield url


def as_record(row: dict[str, t.Any]) -> dict[str, t.Any]:
    """Read a table row back in the tap's record shape: naive TIMESTAMPs are UTC instants."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            # Only a pinned server zone makes this right: TIMESTAMP stores no zone.
            out[key] = value.replace(tzinfo=dt.UTC).isoformat()
        elif isinstance(value, dt.date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def table(url: str, schema: str, kind: str) -> list[dict[str, t.Any]]:
    """Every row of a stream's table, in the tap's record shape."""
    import psycopg  # noqa: PLC0415
    from psycopg.rows import dict_row  # noqa: PLC0415

    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://", 1), row_factory=dict_row
    ) as conn:
        return [as_record(row) for row in conn.execute(f"SELECT * FROM {schema}.{kind}").fetchall()]


def assert_tables_equal_the_sandbox(server, url: str, schema: str) -> None:
    """Each table holds exactly the sandbox's rows, once, with the same instants."""
    for kind in data.TYPES:
        assert got(table(url, schema, kind), kind) == expected(server, kind), kind


def pipe(tap_config: Path, target_config: Path, state: dict | None, tmp_path: Path) -> dict:
    """Run ``tap-bayut | target-postgres`` as two processes; return the target's last STATE."""
    tap = [str(BIN / "tap-bayut"), "--config", str(tap_config)]
    if state is not None:
        (tmp_path / "state.json").write_text(json.dumps(state))
        tap += ["--state", str(tmp_path / "state.json")]
    with subprocess.Popen(tap, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as producer:
        target = [str(BIN / "target-postgres"), "--config", str(target_config)]
        done = subprocess.run(
            target, stdin=producer.stdout, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    assert producer.returncode == 0
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_pipe_full_and_incremental_into_postgres(sandbox, database, tmp_path):
    """Two runs through target-postgres leave each table equal to the sandbox, after upsert."""
    tap_config = tmp_path / "tap.json"
    tap_config.write_text(json.dumps({"api_key": SANDBOX_KEY, "api_url": sandbox.url}))
    target_config = tmp_path / "target.json"
    target_config.write_text(
        json.dumps({"sqlalchemy_url": database, "default_target_schema": "piped", "load_method": "upsert"})
    )

    state = pipe(tap_config, target_config, None, tmp_path)
    assert_tables_equal_the_sandbox(sandbox, database, "piped")
    control(sandbox, "publish-late")
    control(sandbox, "grow-counters")
    pipe(tap_config, target_config, state, tmp_path)
    assert_tables_equal_the_sandbox(sandbox, database, "piped")


def test_timestamp_columns_hold_utc_whatever_the_session_zone(sandbox, database, tmp_path):
    """The server zone is pinned to UTC, so Dubai wall-clock 22:10 reads back as 18:10 UTC."""
    tap_config = tmp_path / "tap.json"
    tap_config.write_text(json.dumps({"api_key": SANDBOX_KEY, "api_url": sandbox.url}))
    target_config = tmp_path / "target.json"
    target_config.write_text(json.dumps({"sqlalchemy_url": database, "default_target_schema": "zoned"}))
    pipe(tap_config, target_config, None, tmp_path)
    [(zone,)] = query(database, "SHOW timezone")
    newest = max(r["date_time"] for r in sandbox.state.dataset.rows["leads"])
    [(stored,)] = query(database, "SELECT max(date_time) FROM zoned.leads")
    assert zone == "UTC"
    assert stored == dt.datetime.strptime(newest, "%Y-%m-%d %H:%M:%S") - dt.timedelta(hours=4)


def meltano(*args: str, env: dict[str, str]) -> None:
    """Run meltano in the repository (its meltano.yml), failing with its output."""
    command = [str(BIN / "meltano"), *args]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def test_meltano_run_full_and_incremental_into_postgres(sandbox, database, meltano_env):
    """meltano run, through the sandbox environment, lands every row once."""
    env = {
        **meltano_env,
        "TAP_BAYUT_API_URL": sandbox.url,
        "TAP_BAYUT_API_KEY": SANDBOX_KEY,
        "TARGET_POSTGRES_SQLALCHEMY_URL": database,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "meltano_run",
    }
    meltano("--environment", "sandbox", "run", "tap-bayut", "target-postgres", env=env)
    assert_tables_equal_the_sandbox(sandbox, database, "meltano_run")
    control(sandbox, "publish-late")
    control(sandbox, "grow-counters")
    meltano("--environment", "sandbox", "run", "tap-bayut", "target-postgres", env=env)
    assert_tables_equal_the_sandbox(sandbox, database, "meltano_run")


def test_quick_start_demo_runs_and_every_table_matches(meltano_env):
    """The README's demo module runs start to finish; every table matches, twice."""
    command = [sys.executable, "-m", "tap_bayut.sandbox.demo", "--no-install"]
    done = subprocess.run(
        command, cwd=ROOT, env=meltano_env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    verdicts = [
        line.split()[-1]
        for line in done.stdout.splitlines()
        if line.startswith("  ") and line.split()[0] in data.TYPES
    ]
    assert verdicts == ["ok"] * (2 * len(data.TYPES))
    assert "Stopped the sandbox and PostgreSQL" in done.stdout


def test_targeted_form_into_postgres_drops_retired_totals(sandbox, database, tmp_path):
    """The newer form by pipe: enquiries land once per lead; ACTIVATE_VERSION retires gone totals."""
    tap_config = tmp_path / "tap.json"
    tap_config.write_text(
        json.dumps({"api_key": SANDBOX_KEY, "api_url": sandbox.url, "api_form": "targeted"})
    )
    target_config = tmp_path / "target.json"
    target_config.write_text(json.dumps({"sqlalchemy_url": database, "default_target_schema": "targeted"}))

    def live(stream: str) -> list[dict[str, t.Any]]:
        return [row for row in table(database, "targeted", stream) if row["_sdc_deleted_at"] is None]

    state = pipe(tap_config, target_config, None, tmp_path)
    for stream in TARGETED_ROUTES:
        assert got_targeted(live(stream), stream) == expected_targeted(sandbox, stream), stream
    control(sandbox, "publish-late")
    control(sandbox, "grow-counters")
    retired = sandbox.state.dataset.retire_listing()
    pipe(tap_config, target_config, state, tmp_path)
    for stream in TARGETED_ROUTES:
        assert got_targeted(live(stream), stream) == expected_targeted(sandbox, stream), stream
    deleted = [
        row
        for stream in ("phone_view_totals", "sms_view_totals", "whatsapp_view_totals")
        for row in table(database, "targeted", stream)
        if row["_sdc_deleted_at"] is not None
    ]
    assert retired > 0
    assert len(deleted) == retired
