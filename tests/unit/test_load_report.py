"""The load report's maths: percentiles, errors by code, the summary and its CSV files."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from bench.load.report import (
    JobRecord,
    RequestError,
    errors_by_code,
    percentiles,
    read_records,
    server_submits,
    summarize,
    write_csv,
)

pytestmark = pytest.mark.unit

STORE = {"accepted": 3, "by_status": {"succeeded": 2, "failed": 1}, "lost": 0, "stuck": 0}


def jobs() -> list[JobRecord]:
    return [
        JobRecord(t=100.0, kind="speak", upload="avatar", submit_s=0.010, status=202, job_id="a",
                  outcome="succeeded", e2e_s=2.0, first_segment_s=1.0, video_bytes=1000),
        JobRecord(t=101.0, kind="chat", upload="fresh", submit_s=0.030, status=202, job_id="b",
                  outcome="succeeded", e2e_s=4.0, first_segment_s=3.0, video_bytes=2000),
        JobRecord(t=102.0, kind="chat", upload="avatar", submit_s=0.020, status=202, job_id="c",
                  outcome="failed", fail_code="no_face", e2e_s=1.0),
        JobRecord(t=103.0, kind="speak", upload="avatar", submit_s=0.005, status=429, code="rate_limited"),
        JobRecord(t=104.0, kind="speak", upload="avatar", submit_s=0.005, status=429, code="rate_limited"),
    ]


def test_percentiles_interpolate_between_ranks() -> None:
    found = percentiles([4.0, 1.0, 3.0, 2.0])
    assert found["n"] == 4
    assert found["p50"] == pytest.approx(2.5)
    assert found["p95"] == pytest.approx(3.85)
    assert found["p99"] == pytest.approx(3.97)
    assert found["max"] == 4.0
    assert percentiles(range(1, 101))["p99"] == pytest.approx(99.01)


def test_percentiles_of_nothing_are_none() -> None:
    assert percentiles([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    assert percentiles([7.0]) == {"n": 1, "p50": 7.0, "p95": 7.0, "p99": 7.0, "max": 7.0}


def test_errors_are_counted_by_where_status_and_code() -> None:
    others = [RequestError(t=1.0, name="events", status=429, code="too_many_streams"),
              RequestError(t=2.0, name="events", status=0, code="ChunkedEncodingError")]
    counted = errors_by_code(jobs(), others)
    assert counted == {"submit 429 rate_limited": 2, "job failed no_face": 1, "events 429 too_many_streams": 1,
                       "events 0 ChunkedEncodingError": 1}


def test_summary_counts_and_latencies() -> None:
    queues = [{"t": 0.0, "asr": 0, "tts": 4}, {"t": 1.0, "asr": 2, "tts": 0}]
    summary = summarize(jobs(), [], queues, STORE, {"seconds": 10.0, "users": 2})
    assert summary["jobs"] == {"submitted": 5, "accepted": 3, "refused": 2, "succeeded_seen": 2, "store": STORE}
    assert summary["throughput_jobs_per_s"] == 0.2
    assert summary["submit_s"]["all"]["n"] == 5
    assert summary["submit_s"]["fresh"] == {"n": 1, "p50": 0.03, "p95": 0.03, "p99": 0.03, "max": 0.03}
    assert summary["e2e_s"]["speak"]["p50"] == 2.0  # the failed job's time is not an end-to-end latency
    assert summary["e2e_s"]["chat"]["n"] == 1
    assert summary["first_segment_s"]["p50"] == pytest.approx(2.0)
    assert summary["queue_depth"] == {"asr": {"max": 2, "mean": 1.0}, "tts": {"max": 4, "mean": 2.0}}


def test_csv_files_hold_every_record(tmp_path: Path) -> None:
    queues = [{"t": 0.0, "asr": 1}, {"t": 1.0, "asr": 0}]
    summary = summarize(jobs(), [], queues, STORE, {"seconds": 10.0})
    written = write_csv(tmp_path, jobs(), queues, summary)
    assert [path.name for path in written] == ["jobs.csv", "queues.csv", "latency.csv", "errors.csv"]
    with (tmp_path / "jobs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    assert rows[2]["fail_code"] == "no_face" and rows[3]["job_id"] == ""
    with (tmp_path / "latency.csv").open() as f:
        latency = {row["measure"]: row for row in csv.DictReader(f)}
    assert float(latency["submit (all)"]["p50"]) == pytest.approx(0.01)
    assert latency["submit (fresh)"]["n"] == "1"
    with (tmp_path / "errors.csv").open() as f:
        assert list(csv.reader(f)) == [["error", "count"], ["submit 429 rate_limited", "2"],
                                       ["job failed no_face", "1"]]
    with (tmp_path / "queues.csv").open() as f:
        assert list(csv.reader(f)) == [["t", "asr"], ["0.0", "1"], ["1.0", "0"]]


def test_records_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    error = RequestError(t=1.0, name="avatar", status=503, code="store_unavailable")
    path.write_text("".join(json.dumps({"job": asdict(job)}) + "\n" for job in jobs())
                    + json.dumps({"error": asdict(error)}) + "\n\n")
    found, others = read_records(path)
    assert found == jobs() and others == [error]
    assert read_records(tmp_path / "missing.jsonl") == ([], [])


METRICS = """\
# HELP talkfarm_http_request_duration_seconds Time to answer an HTTP request
# TYPE talkfarm_http_request_duration_seconds histogram
talkfarm_http_request_duration_seconds_bucket{le="0.05",method="POST",route="/v1/jobs"} 90.0
talkfarm_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/jobs"} 99.0
talkfarm_http_request_duration_seconds_bucket{le="0.25",method="POST",route="/v1/jobs"} 100.0
talkfarm_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/jobs"} 100.0
talkfarm_http_request_duration_seconds_count{method="POST",route="/v1/jobs"} 100.0
talkfarm_http_request_duration_seconds_sum{method="POST",route="/v1/jobs"} 3.5
talkfarm_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/v1/jobs/{job_id}"} 1.0
talkfarm_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/jobs/{job_id}"} 500.0
"""


def test_server_submits_reads_the_coordinators_histogram_of_submits_only() -> None:
    found = server_submits(METRICS)
    assert found["n"] == 100
    assert found["within"] == {"0.05": 0.9, "0.1": 0.99, "0.25": 1.0}
    assert found["p99_at_most"] == 0.1


def test_server_submits_without_submits_or_past_the_largest_bound() -> None:
    assert server_submits("") == {"n": 0, "within": {}, "p99_at_most": None}
    slow = METRICS.replace('le="0.25",method="POST",route="/v1/jobs"} 100.0',
                           'le="0.25",method="POST",route="/v1/jobs"} 98.0')
    slow = slow.replace('le="0.1",method="POST",route="/v1/jobs"} 99.0',
                        'le="0.1",method="POST",route="/v1/jobs"} 97.0')
    assert server_submits(slow)["p99_at_most"] is None
