from __future__ import annotations

from pathlib import Path

from components.tools.bench.profiles import SMOKE_SEED, SeedProfile
from components.tools.bench.seed_load import parse_failures, parse_history, parse_stats

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
HISTORY = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,"
    "99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,"
    "Total Median Response Time,Total Average Response Time,Total Min Response Time,"
    "Total Max Response Time,Total Average Content Size"
)


def test_the_seed_defaults_are_the_seeds_scenario() -> None:
    p = SeedProfile()
    assert (p.testers, p.clients_per_tester, p.spawn_per_tester_per_s) == (4, 1000, 1.0)
    assert p.clients == 4000 and p.spawn_rate == 4.0 and p.ramp_s == 1000.0
    assert SMOKE_SEED.clients < 100


def test_parses_locusts_csvs(tmp_path: Path) -> None:
    prefix = tmp_path / "seed-stock"
    Path(f"{prefix}_stats.csv").write_text(
        HEADER + "\nGET,/hits,980,20,40,55,3,9000,60,16.3,0.3,40,45,50,55,70,90,200,450,"
        "900,9000,9000\n,Aggregated,980,20,40,55,3,9000,60,16.3,0.3,40,45,50,55,70,91,200,"
        "460,900,9000,9000\n"
    )
    Path(f"{prefix}_failures.csv").write_text(
        "Method,Name,Error,Occurrences\n"
        "GET,/hits,\"ConnectionRefusedError(111, 'Connection refused')\",12\n"
        "GET,/hits,\"HTTPError('503 Server Error: Service Unavailable for url: x')\",8\n"
    )
    Path(f"{prefix}_stats_history.csv").write_text(
        HISTORY + "\n100,10,,Aggregated,5,0,40,0,0,0,0,90,0,100,0,0,0,50,0,0,0,0,0,0"
        "\n101,20,,Aggregated,9,1,45,0,0,0,0,95,0,120,0,0,0,59,1,0,0,0,0,0\n"
    )
    assert parse_stats(prefix) == (980, 40.0, 91.0, 460.0)
    kinds, texts = parse_failures(prefix)
    assert kinds["refused"] == 12 and kinds["http_5xx"] == 8
    assert sum(texts.values()) == 20
    series, began = parse_history(prefix)
    assert series.t_s == [0, 1] and series.load == [10.0, 20.0] and began == 20
