"""imdb-serve as a client meets it: a real server process on 127.0.0.1, real HTTP."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import psutil
import pytest

from pipeline import inference, limits
from pipeline.commands import serve
from pipeline.inference import Scorer
from tests.test_inference import VOCABULARY, bundle, written

ROOT = Path(__file__).resolve().parents[1]
WORDS = VOCABULARY + ["unknown", "words", "here", "<br />", "DON'T"]
REQUEST_SECONDS = 2  # the server's --request-seconds here, to keep slow-client tests short


def reviews(count: int, seed: int = 3) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(0, 80))) for _ in range(count)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`python -m pipeline.commands.serve` as its own process, which the tests can kill."""

    def __init__(self, model: Path, port: int | None = None):
        self.model, self.port = model, port or free_port()
        self.log = model.with_suffix(f".{self.port}.log")
        self.process = None

    def start(self) -> Server:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipeline.commands.serve", "--model", str(self.model), "--port", str(self.port),
                 "--request-seconds", str(REQUEST_SECONDS)],
                cwd=ROOT, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if self.get("/readyz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the server was not ready in 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def request(self, method: str, path: str, body: bytes | None = None, headers=None) -> tuple[int, dict | str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {"content-type": "application/json"})
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        kind = answer.getheader("content-type") or ""
        return answer.status, json.loads(data) if kind.startswith("application/json") else data.decode()

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, payload) -> tuple[int, dict]:
        return self.request("POST", path, json.dumps(payload).encode())

    def rss(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "bundle.npz"
    path.write_bytes(written(bundle("binary")))
    return path


@pytest.fixture
def server(model_path):
    running = Server(model_path).start()
    yield running
    running.stop()


def probabilities_of(answer: dict) -> list[float]:
    return [prediction["probability"] for prediction in answer["predictions"]]


def exact(values: np.ndarray) -> list[float]:
    return [float(str(np.float32(value))) for value in values]


def test_served_probabilities_are_imdb_predicts_to_the_bit_singly_and_in_mixed_batches(server, model_path, tmp_path):
    texts = reviews(300)
    expected = exact(Scorer.load(model_path).score(texts))
    # imdb-predict's own numbers for the same reviews, from its JSON output
    (tmp_path / "reviews.txt").write_text("".join(text + "\n" for text in texts))
    printed = subprocess.run(
        [sys.executable, "-m", "pipeline.commands.predict", "--model", str(model_path), "--json", "--file",
         str(tmp_path / "reviews.txt")], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    by_line = {record["line"]: record["probability"] for record in map(json.loads, printed)}
    blank = [number for number, text in enumerate(texts, start=1) if not text.strip()]
    assert [by_line[n] for n in sorted(by_line)] == [p for n, p in enumerate(expected, start=1) if n not in blank]

    served: dict[int, float] = {}
    switch = serve.TOKENIZE_COMPILED_FROM  # both sides of the scorer's switch-over, sent at once
    sizes = [1, serve.SPARSE_FROM - 1, serve.SPARSE_FROM, switch - 1, switch, 1, 100, 2, 64]

    def send(start: int, size: int) -> None:
        status, answer = server.post("/predict", {"texts": texts[start : start + size]} if size > 1
                                     else {"text": texts[start]})
        assert status == 200, answer
        served.update(zip(range(start, start + size), probabilities_of(answer), strict=True))

    starts = np.cumsum([0, *sizes])
    threads = [threading.Thread(target=send, args=(int(start), size))
               for start, size in zip(starts, sizes, strict=False)]
    threads += [threading.Thread(target=send, args=(index, 1)) for index in range(int(starts[-1]), 300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [served[index] for index in range(300)] == expected


def test_the_fast_path_answers_as_the_framework_does(server):
    # application/json takes the fast path; a +json type goes through FastAPI's routing and validation
    for body in ({"text": reviews(1)[0]}, {"texts": reviews(9)}, {"texts": []}):
        data = json.dumps(body).encode()
        fast = server.request("POST", "/predict", data, {"content-type": "application/json"})
        framework = server.request("POST", "/predict", data, {"content-type": "application/vnd.reviews+json"})
        assert fast[0] == 200 and fast == framework
    assert fast[1]["predictions"] == []


def test_each_answer_names_its_model_and_every_class(server, model_path):
    status, answer = server.post("/predict", {"text": "word1 word2"})
    assert status == 200
    md5 = inference_md5(model_path)
    assert answer["model"] == {"name": "imdb-sentiment", "md5": md5}
    (prediction,) = answer["predictions"]
    assert set(prediction["probabilities"]) == {"negative", "positive"}
    assert prediction["label"] == ("positive" if prediction["probability"] >= 0.5 else "negative")
    assert np.float32(prediction["probabilities"]["negative"]) == np.float32(1) - np.float32(prediction["probability"])

    assert server.get("/healthz") == (200, {"status": "alive"})
    assert server.get("/readyz") == (200, {"status": "ready", "model": {"name": "imdb-sentiment", "md5": md5}})
    status, described = server.get("/model")
    assert status == 200 and described["md5"] == md5 and described["classes"] == ["negative", "positive"]
    status, schema = server.get("/openapi.json")
    assert status == 200 and {"/predict", "/explain", "/v2/models/{name}/infer"} <= set(schema["paths"])
    status, text = server.get("/metrics")
    assert status == 200
    assert 'imdb_requests_total{route="/predict",status="200"} 1.0' in text
    assert f'imdb_model_info{{md5="{md5}"' in text and "imdb_request_seconds_bucket" in text


def test_explanations_are_imdb_predicts(server, model_path):
    text = "word1 word5 word9 word2 unknown"
    status, answer = server.post("/explain", {"text": text, "top": 3})
    assert status == 200
    expected = Scorer.load(model_path).explain(text, top=3)
    assert answer["explanation"] == {way: [[w, e] for w, e in words] for way, words in expected.items()}


def test_the_open_inference_protocol_gives_the_same_numbers(server, model_path):
    texts = reviews(7)
    status, answer = server.post("/v2/models/imdb-sentiment/infer", {
        "id": "r1", "inputs": [{"name": "text", "shape": [7], "datatype": "BYTES", "data": texts}],
    })
    assert status == 200 and answer["id"] == "r1" and answer["model_version"] == inference_md5(model_path)
    probability = next(output for output in answer["outputs"] if output["name"] == "probability")
    assert probability["shape"] == [7, 1] and probability["data"] == exact(Scorer.load(model_path).score(texts))
    assert server.get("/v2/health/ready") == (200, {"ready": True})
    inputs = server.get("/v2/models/imdb-sentiment")[1]["inputs"]
    assert inputs == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    status, answer = server.post("/v2/models/other/infer", {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES",
                                                                        "data": ["x"]}]})
    assert status == 404 and "imdb-sentiment" in answer["detail"]


@pytest.mark.parametrize(
    "body, status, says",
    [
        (b"{bad json", 422, "JSON"),
        (json.dumps({"text": 5}).encode(), 422, "string"),
        (json.dumps({"text": "a", "texts": ["b"]}).encode(), 422, "not both"),
        (json.dumps({}).encode(), 422, "not both"),
        (json.dumps({"texts": ["w"] * (limits.MAX_SERVE_REVIEWS + 1)}).encode(), 422, "at most 1024"),
        (json.dumps({"text": "a", "extra": 1}).encode(), 422, "Extra inputs"),
        (b'{"text": "caf\xe9"}', 400, "not JSON in UTF-8"),
        (json.dumps({"text": "w" * (limits.MAX_REVIEW_BYTES + 1)}).encode(), 413, "longest review"),
    ],
)
def test_hostile_requests_get_a_json_4xx_and_the_server_goes_on(server, body, status, says):
    got, answer = server.request("POST", "/predict", body)
    assert got == status and says in json.dumps(answer), answer
    assert server.post("/predict", {"text": "word1"})[0] == 200


def answer_of(connection) -> bytes:
    """All a server sends before it closes: its head and body may come in separate segments."""
    answer = b""
    while piece := connection.recv(4096):
        answer += piece
    return answer


def test_a_body_over_the_limit_is_refused_by_its_length_or_as_it_arrives(server):
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                           b"content-length: %d\r\n\r\n" % (limits.MAX_REQUEST_BYTES + 1))
        connection.settimeout(30)
        answer = answer_of(connection)
        assert answer.startswith(b"HTTP/1.1 413 ") and b"largest allowed" in answer
    piece = b"w" * (1 << 20)
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                           b"transfer-encoding: chunked\r\n\r\n")
        connection.settimeout(30)
        try:
            for _ in range(3):  # 3 MB in chunks, no length declared; the last chunk never comes
                connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            answer = connection.recv(1000)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        # closed with our bytes unread, the kernel may reset the connection rather than deliver the 413
        assert answer == b"" or answer.startswith(b"HTTP/1.1 413 ")
    assert server.post("/predict", {"text": "word1"})[0] == 200


def test_slow_and_silent_clients_are_cut_off_and_others_are_served_meanwhile(server):
    silent = socket.create_connection(("127.0.0.1", server.port))  # sends nothing
    slow_head = socket.create_connection(("127.0.0.1", server.port))
    slow_head.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and never ends its head
    slow_body = socket.create_connection(("127.0.0.1", server.port))
    slow_body.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                      b"content-length: 100\r\n\r\n{\"text\"")
    assert server.post("/predict", {"text": "word1"})[0] == 200
    for connection in (silent, slow_head, slow_body):
        connection.settimeout(REQUEST_SECONDS + 10)
    assert silent.recv(100) == b"" and slow_head.recv(100) == b""  # closed
    assert answer_of(slow_body).startswith(b"HTTP/1.1 408 ")


def test_a_thousand_connections_at_once_leave_the_server_serving_within_its_memory(server):
    connections = []
    try:
        for _ in range(1000):
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                               b"content-length: 200000\r\n\r\n{\"text\": \"")  # bodies that stop short
            connections.append(connection)
        started = time.monotonic()
        assert server.post("/predict", {"text": "word1"})[0] == 200
        assert server.get("/healthz")[0] == 200
        assert time.monotonic() - started < REQUEST_SECONDS + 5
        assert server.rss() < 300_000_000
    finally:
        for connection in connections:
            connection.close()
    assert server.post("/predict", {"texts": reviews(50)})[0] == 200


def test_a_new_bundle_is_swapped_in_under_load_without_a_failed_request(server, model_path):
    old, new = Scorer.load(model_path), Scorer(bundle("tfidf"))
    old_md5, new_bytes = inference_md5(model_path), written(bundle("tfidf"))
    texts = reviews(40, seed=9)
    expected = {old_md5: exact(old.score(texts))}
    answers, failures, stop = [], [], threading.Event()

    def client(offset: int) -> None:
        while not stop.is_set():
            index = offset % len(texts)
            offset += 1
            status, answer = server.post("/predict", {"text": texts[index]})
            if status != 200:
                failures.append((status, answer))
            else:
                answers.append((index, answer["model"]["md5"], answer["predictions"][0]["probability"]))

    threads = [threading.Thread(target=client, args=(n * 7,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        replace_atomically(model_path, new_bytes)
        new_md5 = inference_md5(model_path)
        expected[new_md5] = exact(new.score(texts))
        wait_for(lambda: server.get("/readyz")[1]["model"]["md5"] == new_md5)
        time.sleep(0.5)
        replace_atomically(model_path, b"PK\x05\x06" + b"\0" * 18)  # not a bundle: refused, the new one serves on
        time.sleep(2.5)
        assert server.get("/readyz")[1]["model"]["md5"] == new_md5
        server.process.send_signal(signal.SIGHUP)  # the same bad file again, on request
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert {md5 for _, md5, _ in answers} == {old_md5, new_md5}
    assert all(probability == expected[md5][index] for index, md5, probability in answers)
    log = server.log.read_text()
    assert log.count("refused the new") == 2 and f"still serving {new_md5}" in log
    assert f"serving {new_md5} (the file changed; was {old_md5})" in log


def test_killed_and_started_again_it_serves_at_once(server, model_path):
    port = server.port
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    started = time.monotonic()
    again = Server(model_path, port).start()
    try:
        assert again.post("/predict", {"text": "word1"})[0] == 200
        assert time.monotonic() - started < 30
    finally:
        again.stop()


def test_a_model_that_is_not_a_bundle_stops_the_command_with_one_line(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    result = subprocess.run([sys.executable, "-m", "pipeline.commands.serve", "--model", str(path), "--port", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {path} is not a valid model bundle (File is not a zip file)"]


def replace_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def inference_md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def test_urls_in_the_module_docstring_are_the_apps_routes():
    app = serve.create_app(Path("unused.npz")).app.app  # inside the bounds and the fast path
    routes = {route.path for route in app.routes}
    for documented in ("/predict", "/explain", "/healthz", "/readyz", "/model", "/metrics", "/docs"):
        assert documented in routes and documented in serve.__doc__
    assert inference.BATCH_REVIEWS <= serve.DEFAULT_BATCH_REVIEWS <= limits.MAX_SERVE_REVIEWS


def test_bodies_being_read_share_one_budget_and_wait_their_turn():
    async def scenario():
        read, release = [], asyncio.Event()

        async def app(scope, receive, send):
            message = await receive()
            read.append(len(message["body"]))
            if len(read) == 1:
                await release.wait()  # the first request holds its share until answered
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        bounded = serve.Bounded(app, seconds=5, metrics=serve.Metrics(), budget=100)

        def request(size: int):
            messages = [{"type": "http.request", "body": b"x" * size, "more_body": False}]
            answers = []

            async def receive():
                return messages.pop(0)

            async def send(message):
                answers.append(message)

            scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
            return asyncio.create_task(bounded(scope, receive, send)), answers

        first, _ = request(80)
        await asyncio.sleep(0.05)
        second, answers = request(60)
        await asyncio.sleep(0.05)
        assert read == [80] and bounded.free == 20  # 80 + 60 would go over the 100
        release.set()
        await asyncio.gather(first, second)
        assert read == [80, 60] and answers[0]["status"] == 200 and bounded.free == 100

    asyncio.run(scenario())


def test_small_batches_are_scored_one_at_a_time_and_large_ones_side_by_side():
    class Recording:  # a scorer that notes how many batches it scores at once
        batch_from = 10  # from 10 reviews on, its compiled route

        def __init__(self):
            self.now = self.most = 0
            self.lock = threading.Lock()

        def score(self, texts):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.05)
            with self.lock:
                self.now -= 1
            return np.zeros(len(texts), np.float32)

    async def most_at_once(reviews: int) -> int:
        scorer = Recording()
        model = types.SimpleNamespace(scorer=scorer)
        batcher = serve.Batcher(max_reviews=reviews, threads=2)  # one request a batch
        batcher.start()
        await asyncio.gather(*(batcher.score(model, ["word"] * reviews) for _ in range(6)))
        await batcher.stop()
        return scorer.most

    assert asyncio.run(most_at_once(3)) == 1
    assert asyncio.run(most_at_once(10)) == 2


def test_the_benchmarks_clients_count_answers_and_errors(server):
    from bench.serve import Scenario, load

    texts = reviews(40)
    good = Scenario("one review", clients=4, batch=1, seconds=1.0)
    asyncio.run(load(f"http://127.0.0.1:{server.port}/predict", texts, good, warmup=0.2))
    batched = Scenario("batches", clients=2, batch=8, seconds=1.0)
    asyncio.run(load(f"http://127.0.0.1:{server.port}/predict", texts, batched, warmup=0.2))
    refused = Scenario("a route that is not there", clients=2, batch=1, seconds=0.5)
    asyncio.run(load(f"http://127.0.0.1:{server.port}/nowhere", texts, refused, warmup=0.1))
    assert good.latencies and good.errors == 0 and batched.latencies and batched.errors == 0
    assert batched.reviews_per_s == 8 * batched.requests_per_s
    assert refused.errors > 0 and not refused.latencies
