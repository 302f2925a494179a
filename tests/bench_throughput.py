"""Benchmark: records per second and peak memory of one large call_logs answer.

Run: ``.venv/bin/python tests/bench_throughput.py [--rows 50000] [--repeat 5]``. Each
measurement is a fresh process (so peak RSS is its own), serving one JSON answer of
``--rows`` call logs through requests-mock, syncing to /dev/null. It prints the median of
the repeats for the tap as shipped (msgspec writer) and for the SDK's default writer, and
the ratio. Not a test: timings on a shared machine vary, so nothing here asserts them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).parent.parent


def call_logs(count: int) -> bytes:
    """Build a realistic answer: the document's call log, varied, half of them missed."""
    rows = []
    for n in range(count):
        day, second = divmod(n, 86_000)
        clock = f"{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        stamp = f"2026-{11 + day % 2:02d}-{1 + day % 28:02d} {clock}"
        missed = n % 2 == 1
        rows.append(
            {
                "call_log_id": f"phone|{n:08x}" if missed else 5_000_000 + n,
                "listing_reference": "291-Ap-R-23906",
                "lead_id": "",
                "object_type_id": 1,
                "object_id": 7446192,
                "stats_ip_id": 900_000 + n,
                "date": stamp[:10],
                "time": stamp[11:],
                "role_id": 11,
                "caller_number": "+971585849046",
                "proxy_number": "+97143000100",
                "receiver_numbers_list": "+971500000001#35,+971500000002#35",
                "receiver_number": "+971500000001",
                "call_status": "missed" if missed else "connected",
                "call_total_duration": "0:03:23",
                "call_connected_duration": "00:02:54",
                "call_time": None if missed else stamp,
                "call_pickup_time": None if missed else stamp,
                "call_recordingurl": "None"
                if missed
                else "https://sr.knowlarity.example/vr/fetchsound/?callid=1",
                "caller_location": None if missed else "United Arab Emirates",
                "source": "knowlarity",
                "is_object_fetched": 0,
                "reference_log_id": 120_000_000 + n,
                "call_type": None if missed else "in",
            }
        )
    return json.dumps(rows).encode()


def child(writer: str, rows: int) -> None:
    """Sync one answer of ``rows`` call logs in this process; print seconds and peak RSS."""
    import requests_mock  # noqa: PLC0415
    from singer_sdk.io_base import SingerWriter  # noqa: PLC0415

    from tap_bayut.tap import TapBayut  # noqa: PLC0415

    if writer == "sdk-default":
        TapBayut.message_writer_class = SingerWriter  # type: ignore[assignment]
    body = call_logs(rows)
    url = "https://bench.invalid/api-v7/stats/website-client-leads"
    config = {"api_key": "bench", "api_url": url, "start_date": "2026-11-01T00:00:00Z"}
    with requests_mock.Mocker() as mocker, open(os.devnull, "w") as sink:  # noqa: PTH123
        mocker.get(url, content=body)
        tap = TapBayut(config=config, parse_env_config=False)
        for name, stream in tap.streams.items():
            stream.selected = name == "call_logs"
        started = time.perf_counter()
        with redirect_stdout(sink):
            tap.sync_all()
        seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "body_mib": len(body) / 2**20}))


def main() -> None:
    """Run each writer ``--repeat`` times in fresh processes and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=["msgspec", "sdk-default"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    env = {**os.environ, "TAP_BAYUT_LOGLEVEL": "ERROR"}
    results: dict[str, list[dict[str, float]]] = {}
    for writer in ("msgspec", "sdk-default"):
        for _ in range(args.repeat):
            command = [sys.executable, __file__, "--child", writer, "--rows", str(args.rows)]
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
            results.setdefault(writer, []).append(json.loads(done.stdout.splitlines()[-1]))
    print(
        f"{args.rows} call logs in one answer ({results['msgspec'][0]['body_mib']:.1f} MiB of JSON), "
        f"median of {args.repeat} fresh processes:"
    )
    medians = {}
    for writer, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mib"] for r in runs)
        medians[writer] = seconds
        print(
            f"  {writer:<12} {seconds:6.2f} s  {args.rows / seconds:8.0f} records/s  peak RSS {peak:6.0f} MiB"
        )
    print(f"  msgspec writer is {medians['sdk-default'] / medians['msgspec']:.2f}x the SDK default's speed")


if __name__ == "__main__":
    main()
