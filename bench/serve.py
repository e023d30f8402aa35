"""`python -m bench.serve`: imdb-serve under load, on the real reviews, written to bench/serve.md.

The server runs as its own process (`python -m pipeline.commands.serve`) with the project's
model (data/bundle/imdb-sentiment.npz, from `dvc repro`); the clients are one asyncio
process (keep-alive connections, HTTP/1.1 written by hand: see `load`) on the same machine. Each scenario sends
the test reviews (data/raw/test.parquet), one per request or 256 per request, from 1,
16 and 64 concurrent clients for a few seconds; then a soak of single reviews from 16
clients watches the server's memory.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psutil

from bench.run import code_version, machine, progress
from pipeline import files, markdown, paths
from pipeline.cli import UserError, run
from pipeline.commands.serve import bundle_md5
from testbed.project import ROOT

OUT = ROOT / "bench" / "serve.md"
CLIENTS = (1, 16, 64)
BATCH = 256
SECONDS = 6.0  # measured, per scenario, after a warm-up of WARMUP
WARMUP = 1.0
SOAK_SECONDS = 180.0
SOAK_CLIENTS = 16
# The targets on a 2-core machine with the clients sharing it
MAX_P50_ONE_CLIENT_MS = 2.0
MIN_REQUESTS_16 = 2_000
MAX_P99_16_MS = 50.0
MIN_BATCH_REVIEWS = 20_000
MAX_RSS_BYTES = 300_000_000
MAX_SOAK_GROWTH = 0.05  # the soak's last RSS against its first, at most 5% more


@dataclass
class Scenario:
    name: str
    clients: int
    batch: int  # reviews per request; 1: {"text": …}
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    peak_rss: int = 0
    rss: list[tuple[float, int]] = field(default_factory=list)

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def reviews_per_s(self) -> float:
        return self.requests_per_s * self.batch

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(bundle: Path, port: int) -> subprocess.Popen:
    env = {**os.environ}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "pipeline.commands.serve", "--model", str(bundle), "--port", str(port)]
    server = subprocess.Popen(command,
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise UserError(f"imdb-serve exited: {server.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise UserError("imdb-serve was not ready within 60 s")


class RssWatch:
    """The server's resident memory, sampled every 0.1 s in a thread."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def _run(self):
        started = time.monotonic()
        while not self.stopped.wait(0.1):
            self.samples.append((time.monotonic() - started, self.process.memory_info().rss))


MAX_ANSWER_HEAD = 16 * 1024  # the client reads at most this much of an answer's head,
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # and at most this much of its body
ANSWER_SECONDS = 30.0  # a request not answered in this time counts as an error


async def load(url: str, reviews: list[str], scenario: Scenario, warmup: float) -> None:
    """Each client a keep-alive connection sending requests one after the other. The HTTP is
    written here, each request's bytes made before the clock starts: the clients share the
    two cores with the server, and a general-purpose client (aiohttp) took nearly half as
    much CPU per request as the server took to answer it."""
    host, port, path = _parts(url)
    bodies = [orjson.dumps({"text": text}) for text in reviews] if scenario.batch == 1 else [
        orjson.dumps({"texts": reviews[start : start + scenario.batch]})
        for start in range(0, len(reviews) - scenario.batch + 1, scenario.batch)
    ]
    requests = [b"POST %s HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (path.encode(), host.encode(), port, len(body), body) for body in bodies]
    started = time.monotonic()
    measure_from, measure_to = started + warmup, started + warmup + scenario.seconds

    async def client(number: int) -> None:
        sent, connection = number, None
        while (now := time.monotonic()) < measure_to:
            request = requests[sent % len(requests)]
            sent += scenario.clients
            try:
                connection = connection or await asyncio.open_connection(host, port, limit=MAX_ANSWER_HEAD)
                ok = await asyncio.wait_for(_exchange(*connection, request), ANSWER_SECONDS)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                ok = False
            if not ok and connection:
                connection[1].close()
                connection = None
            if now >= measure_from:
                scenario.latencies.append(time.monotonic() - now) if ok else None
                scenario.errors += not ok
        if connection:
            connection[1].close()

    await asyncio.gather(*(client(number) for number in range(scenario.clients)))


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
    """Sends the request and reads its answer whole: is it a 200?"""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
                   if line.startswith(b"content-length:")), None)
    if length is None or length > MAX_ANSWER_BYTES:
        raise ValueError("an answer without a length, or too long")
    await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200 ")


def _parts(url: str) -> tuple[str, int, str]:
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname, parsed.port, parsed.path


def measure(url: str, server: subprocess.Popen, reviews: list[str], scenario: Scenario, warmup: float) -> Scenario:
    progress(f"{scenario.name}: {scenario.clients} clients, {scenario.seconds:.0f} s")
    with RssWatch(server.pid) as watch:
        _run_loop(load(url, reviews, scenario, warmup))
    scenario.rss = watch.samples
    scenario.peak_rss = max(rss for _, rss in watch.samples)
    return scenario


def _run_loop(coroutine) -> None:
    """With uvloop, as the server runs, where it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render(scenarios: list[Scenario], soak: Scenario, machine_now: str, bundle: str) -> str:
    by = {(s.batch, s.clients): s for s in scenarios}
    one, sixteen = by[1, 1], by[1, 16]
    best_batch = max((s for s in scenarios if s.batch == BATCH), key=lambda s: s.reviews_per_s)
    errors = sum(s.errors for s in [*scenarios, soak])
    peak = max(s.peak_rss for s in [*scenarios, soak])
    first, last = soak.rss[len(soak.rss) // 10][1], soak.rss[-1][1]  # after its first tenth: warmed up
    growth = last / first - 1
    rows = [
        [s.name, str(s.clients), f"{s.requests_per_s:,.0f}", f"{s.reviews_per_s:,.0f}", f"{s.percentile(0.5):.2f}",
         f"{s.percentile(0.99):.2f}", str(s.errors), f"{s.peak_rss / 1e6:.0f}"]
        for s in [*scenarios, soak]
    ]
    targets = [
        ("p50, one review, 1 client (ms)", f"{one.percentile(0.5):.2f}", f"≤ {MAX_P50_ONE_CLIENT_MS}",
         one.percentile(0.5) <= MAX_P50_ONE_CLIENT_MS),
        ("single-review requests/s, 16 clients", f"{sixteen.requests_per_s:,.0f}", f"≥ {MIN_REQUESTS_16:,}",
         sixteen.requests_per_s >= MIN_REQUESTS_16),
        ("p99, one review, 16 clients (ms)", f"{sixteen.percentile(0.99):.2f}", f"≤ {MAX_P99_16_MS}",
         sixteen.percentile(0.99) <= MAX_P99_16_MS),
        (f"reviews/s in batches of {BATCH} ({best_batch.clients} clients)", f"{best_batch.reviews_per_s:,.0f}",
         f"≥ {MIN_BATCH_REVIEWS:,}", best_batch.reviews_per_s >= MIN_BATCH_REVIEWS),
        ("errors, all scenarios and the soak", str(errors), "0", errors == 0),
        ("server's peak RSS (MB)", f"{peak / 1e6:.0f}", f"≤ {MAX_RSS_BYTES // 1_000_000}", peak <= MAX_RSS_BYTES),
        (f"RSS growth over the {soak.seconds:.0f} s soak", f"{growth:+.1%} ({first / 1e6:.0f} → {last / 1e6:.0f} MB)",
         f"≤ {MAX_SOAK_GROWTH:.0%}", growth <= MAX_SOAK_GROWTH),
    ]
    lines = [
        "# Benchmark: imdb-serve under load",
        "",
        f"Model: {bundle}; the real test reviews; the server's code at {code_version()}.",
        "",
        f"Machine: {machine_now}.",
        "",
        "The server (`python -m pipeline.commands.serve`) and the clients (one asyncio process on uvloop, a keep-alive "
        "connection each, requests prepared in advance) share the machine. Latency is a request's round trip as "
        "the client sees it.",
        "",
        "## Targets",
        "",
        *markdown.table_lines(
            ["measure", "imdb-serve", "target", "met"],
            [[name, value, target, _met(ok)] for name, value, target, ok in targets],
        ),
        "",
        "## Scenarios",
        "",
        *markdown.table_lines(
            ["scenario", "clients", "requests/s", "reviews/s", "p50 (ms)", "p99 (ms)", "errors",
             "server's peak RSS (MB)"],
            rows,
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS, help="per scenario")
    parser.add_argument("--soak", type=float, default=SOAK_SECONDS, help="the soak's length in seconds")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    bundle = ROOT / paths.BUNDLE
    if not bundle.is_file() or not (ROOT / paths.raw("test")).is_file():
        raise UserError(f"missing {paths.BUNDLE} or {paths.raw('test')}: run `dvc repro` first")
    reviews = files.read_parquet(ROOT / paths.raw("test"), ["text"]).column("text").to_pylist()
    port = free_port()
    url = f"http://127.0.0.1:{port}/predict"
    machine_now = machine()
    server = start_server(bundle, port)
    try:
        scenarios = [
            measure(url, server, reviews, Scenario(f"{'one review' if batch == 1 else f'batches of {batch}'}",
                                                   clients, batch, args.seconds), WARMUP)
            for batch in (1, BATCH) for clients in CLIENTS
        ]
        soak = measure(url, server, reviews, Scenario("soak, one review", SOAK_CLIENTS, 1, args.soak), WARMUP)
    finally:
        server.kill()
        server.wait()
    report = render(scenarios, soak, machine_now, f"{paths.BUNDLE} ({bundle_md5(bundle)})")
    files.write_text(args.out, report)
    print(report, end="")


if __name__ == "__main__":
    run(main)
