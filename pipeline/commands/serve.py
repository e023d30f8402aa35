"""imdb-serve: the inference bundle over HTTP, for many clients.

    imdb-serve                      # the project's model (data/bundle/imdb-sentiment.npz)
    imdb-serve --model PATH --port 8000

A FastAPI app on uvicorn, bound to 127.0.0.1 unless --host says otherwise:

    POST /predict        {"text": "..."} or {"texts": ["...", ...]}: a label and a
                         probability per class for each, and the model's identity
    POST /explain        {"text": "...", "top": 5}: the words pushing it each way
    GET  /healthz        alive;  GET /readyz: a model is loaded
    GET  /model          the model's identity: md5, classes, params, test metrics
    GET  /metrics        Prometheus: requests, latency, errors, batch sizes, the model
    GET  /docs           OpenAPI (Swagger UI); the schema at /openapi.json
    /v2/...              the Open Inference Protocol (KServe V2), for KServe and MLServer

Scoring is the bundle's Scorer, the code imdb-predict and evaluate use, so a review
gets the same probability to the bit. It runs in --threads threads off the event
loop: requests that arrive while every thread is busy are scored together by the
next one free, up to --batch-reviews, so a request waits at most for the batches
before it, and one that finds a thread free is scored at once (no timer).

The bundle file is watched: a new one (replaced atomically, as `dvc checkout` and
`dvc artifacts get` do) or SIGHUP loads it in a thread of its own, checks it and swaps
it in; requests already taken finish on the model they started with. A bundle that
fails its checks is refused with one log line, and the old model keeps serving.

Every request is bounded (pipeline/limits.py): its body, its reviews, its time to
arrive (its head, then its body); the bodies being read share MAX_BODY_BYTES_IN_FLIGHT,
so memory stays bounded however many clients connect.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import limits, paths
from pipeline.cli import UserError, run
from pipeline.inference import Scorer

PROG = "imdb-serve"
MODEL_NAME = "imdb-sentiment"  # the name the Open Inference Protocol routes use
DEFAULT_PORT = 8000
DEFAULT_BATCH_REVIEWS = 256
DEFAULT_THREADS = 2  # scoring threads
# From this many reviews on, a batch is tokenized in compiled code (the same words): below,
# Arrow's fixed cost outweighs it. Measured here, µs a review, Arrow against Python: 232
# against 87 at 8, 81 against 65 at 32, 61 against 63 at 48, 31 against 56 at 256.
TOKENIZE_COMPILED_FROM = 48
# From this many on, scipy's product (loaded anyway) rather than numpy alone: µs a review,
# 190 against 103 for one, 100 against 75 at 2, 55 against 62 at 4.
SPARSE_FROM = 4
RELOAD_POLL_SECONDS = 1.0  # how often the bundle file is looked at for a new version
# A review the readiness check scores: every bundle must score it
PROBE_REVIEW = "a check that the model scores"
log = logging.getLogger(PROG)


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class Model:
    """A loaded bundle and what identifies it."""

    scorer: Scorer
    md5: str
    path: str
    loaded_at: float = field(default_factory=time.time)

    @property
    def classes(self) -> list:
        return self.scorer.bundle.classes

    def identity(self) -> dict:
        metadata = self.scorer.bundle.metadata()
        params = metadata["params"]
        return {
            "name": MODEL_NAME,
            "md5": self.md5,
            "path": self.path,
            "classes": [str(name) for name in self.classes],
            "params": {
                "num_words": params["vocab"]["num_words"],
                "ngram_range": params["vocab"]["ngram_range"],
                "weighting": params["vectorize"]["weighting"],
                "hidden_layers": params["model"]["hidden_layers"],
                "units": params["model"]["units"],
                "epochs": params["train"]["epochs"],
            },
            "test_metrics": {key: value for key, value in (metadata["metrics"] or {}).items()
                             if isinstance(value, (int, float))},
        }


def load_model(path: Path) -> Model:
    """The bundle at path, read, checked (it must score a review) and identified by the md5
    of the very bytes read: a file replaced while it is read is read again."""
    for _ in range(3):
        before = _signature(path)
        digest = bundle_md5(path)
        scorer = Scorer.load(path, batch_from=TOKENIZE_COMPILED_FROM, sparse_from=SPARSE_FROM)
        if _signature(path) == before:
            break
    else:
        raise UserError(f"{path} kept changing while it was read")
    for size in (TOKENIZE_COMPILED_FROM, SPARSE_FROM, 1):  # every path, and every import they need
        scorer.score([PROBE_REVIEW] * size)
    return Model(scorer, digest, str(path))


def _signature(path: Path) -> tuple | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def bundle_md5(path: Path) -> str:
    digest = hashlib.md5()  # DVC's hash: the md5 `dvc.lock` and `dvc artifacts` show for the bundle
    with limits.open_regular(path, "a model bundle") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- scoring off the loop


@dataclass
class _Waiting:
    model: Model
    texts: list[str]
    done: asyncio.Future


class Batcher:
    """Scores texts in `threads` threads off the event loop. Requests that arrive while every
    thread is busy wait in line and are scored together by the next thread free, up to
    max_reviews at once, grouped by the model each started with; a request that finds a
    thread free is scored as soon as it comes.

    A batch of at least its scorer's `batch_from` reviews is tokenized by Arrow, which
    lets go of Python's lock, so two threads score such batches on two cores. A smaller
    one is scored in Python, holding the lock: one such batch at a time, while the next
    gathers (two at once would fight for the lock, in smaller batches)."""

    def __init__(self, max_reviews: int, threads: int, on_batch: Callable[[int], None] = lambda size: None):
        self.max_reviews = max_reviews
        self.threads = threads
        self.on_batch = on_batch
        self.waiting: asyncio.Queue[_Waiting] = asyncio.Queue()
        self.thread = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="score")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.thread.shutdown(wait=False, cancel_futures=True)

    async def score(self, model: Model, texts: list[str]) -> np.ndarray:
        done = asyncio.get_running_loop().create_future()
        await self.waiting.put(_Waiting(model, texts, done))
        return await done

    async def _run(self) -> None:
        free = asyncio.Semaphore(self.threads)
        in_python = asyncio.Semaphore(1)  # held by the small batch being scored
        scoring: set[asyncio.Task] = set()
        while True:
            first = await self.waiting.get()
            await free.acquire()  # while every thread is busy, the next batch gathers
            batch, reviews = self._gathered([first], len(first.texts))
            held = [free]
            if reviews < first.model.scorer.batch_from:
                await in_python.acquire()  # while the small batch before it is scored, it gathers
                batch, reviews = self._gathered(batch, reviews)
                held.append(in_python)
            task = asyncio.get_running_loop().create_task(self._score(batch))
            scoring.add(task)
            task.add_done_callback(lambda done, held=held: (scoring.discard(done), *(s.release() for s in held)))

    def _gathered(self, batch: list[_Waiting], reviews: int) -> tuple[list[_Waiting], int]:
        while reviews < self.max_reviews and not self.waiting.empty():
            batch.append(self.waiting.get_nowait())
            reviews += len(batch[-1].texts)
        return batch, reviews

    async def _score(self, batch: list[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        for model in {id(item.model): item.model for item in batch}.values():
            group = [item for item in batch if item.model is model and not item.done.cancelled()]
            if not group:
                continue
            texts = [text for item in group for text in item.texts]
            self.on_batch(len(texts))
            try:
                probabilities = await loop.run_in_executor(self.thread, model.scorer.score, texts)
            except Exception as error:  # noqa: BLE001 - handed to the requests, which answer 500
                for item in group:
                    if not item.done.done():
                        item.done.set_exception(error)
                continue
            start = 0
            for item in group:
                if not item.done.done():
                    item.done.set_result(probabilities[start : start + len(item.texts)])
                start += len(item.texts)


# ---------------------------------------------------------------- requests and answers


class PredictRequest(BaseModel):
    """One review (`text`) or several (`texts`), not both."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr | None = None
    texts: Annotated[list[StrictStr], Field(max_length=limits.MAX_SERVE_REVIEWS)] | None = None


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: StrictStr
    top: Annotated[int, Field(ge=1, le=100)] = 5


class InferInput(BaseModel):
    """An Open Inference Protocol input tensor: the reviews as BYTES, one per element."""

    name: StrictStr
    shape: list[int]
    datatype: StrictStr
    data: Annotated[list[StrictStr], Field(max_length=limits.MAX_SERVE_REVIEWS)]


class InferRequest(BaseModel):
    id: StrictStr | None = None
    inputs: Annotated[list[InferInput], Field(min_length=1, max_length=1)]


def predictions(model: Model, probabilities: np.ndarray) -> list[dict]:
    """A label and the probability of each class for every review, as float32 scalars
    (orjson writes each in its shortest form, as imdb-predict --json does). With two
    classes the model gives the second's (as imdb-predict prints it, to the bit); the
    first's is 1 - that."""
    names = [str(name) for name in model.classes]
    labels = [str(label) for label in model.scorer.labels(probabilities)]
    if probabilities.ndim == 1:
        chosen, per_class = probabilities, np.stack([np.float32(1) - probabilities, probabilities], axis=1)
    else:
        chosen, per_class = probabilities.max(axis=1), probabilities
    return [{"label": label, "probability": probability, "probabilities": dict(zip(names, row, strict=True))}
            for label, probability, row in zip(labels, chosen, per_class, strict=True)]


def predict_answer(model: Model, probabilities: np.ndarray) -> bytes:
    return orjson.dumps({"model": {"name": MODEL_NAME, "md5": model.md5},
                         "predictions": predictions(model, probabilities)}, option=orjson.OPT_SERIALIZE_NUMPY)


def _check_reviews(texts: list[str]) -> None:
    for number, text in enumerate(texts, start=1):
        if limits.longer_than(text, limits.MAX_REVIEW_BYTES):
            raise HTTPException(413, f"review {number} is longer than {limits.size(limits.MAX_REVIEW_BYTES)}, "
                                     "the longest review allowed")


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


# ---------------------------------------------------------------- the usual request, without the framework


class PredictFastPath:
    """ASGI: a well-formed POST /predict (a JSON object with a \"text\" or \"texts\" within the
    limits, while a model is loaded) is scored and answered here, without FastAPI's routing
    and validation: for one review they took more of the server's time than scoring it.
    Any other request, or one this does not take, goes on to the app with its body, so
    every refusal is made in one place and reads the same."""

    def __init__(self, app, state: State):
        self.app = app
        self.state = state
        self.route = next(route for route in app.routes if getattr(route, "path", None) == "/predict")

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope["path"] == "/predict" and scope["method"] == "POST"
                and _json_content(scope["headers"])):
            return await self.app(scope, receive, send)
        pieces, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            pieces.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(pieces)
        texts, model = _well_formed_texts(body), self.state.model
        if texts is None or model is None:
            return await self.app(scope, _replayed(body, receive), send)
        scope["route"] = self.route
        answer = predict_answer(model, await self.state.batcher.score(model, texts))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})


def _json_content(headers: list[tuple[bytes, bytes]]) -> bool:
    """No content type, or JSON's: what FastAPI reads as JSON (it also takes `+json` types)."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return True


def _well_formed_texts(body: bytes) -> list[str] | None:
    """The reviews of a PredictRequest the app would take as it is, else None."""
    try:
        request = orjson.loads(body)  # strict UTF-8 and JSON: whatever it refuses, the app answers
    except orjson.JSONDecodeError:
        return None
    if type(request) is not dict or len(request) != 1:
        return None
    ((key, value),) = request.items()
    if key == "text" and type(value) is str:
        texts = [value]
    elif key == "texts" and type(value) is list and len(value) <= limits.MAX_SERVE_REVIEWS:
        texts = value
    else:
        return None
    if any(type(text) is not str or limits.longer_than(text, limits.MAX_REVIEW_BYTES) for text in texts):
        return None
    return texts


def _replayed(body: bytes, receive):
    """A receive that gives the body already read, then whatever the client sends next."""
    given = False

    async def replay():
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# ---------------------------------------------------------------- bounds on every request


class Bounded:
    """ASGI middleware that counts and times every request (pure ASGI: Starlette's
    BaseHTTPMiddleware cost a third of a small request). A request body over
    limits.MAX_REQUEST_BYTES is refused with 413 (by its Content-Length, or as it
    arrives), one that takes longer than `seconds` to arrive with 408. The bodies being
    read share limits.MAX_BODY_BYTES_IN_FLIGHT: a request whose next piece would go over
    waits for others to finish, within its time; so a thousand clients that send bodies
    slowly cost neither memory nor the other clients' answers."""

    def __init__(self, app, seconds: float, metrics: Metrics, budget: int = limits.MAX_BODY_BYTES_IN_FLIGHT):
        self.app = app
        self.seconds = seconds
        self.metrics = metrics
        self.budget = budget
        self.free = budget
        self.waiting = 0  # requests waiting for a share of the budget
        self.freed: asyncio.Condition | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def counted_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._bounded(scope, receive, counted_send)
        finally:  # every request counted and timed, by the route it matched
            route = scope.get("route")
            name = getattr(route, "path", "other")
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)

    async def _bounded(self, scope, receive, send):
        if scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limits.MAX_REQUEST_BYTES):
            return await _refuse(send, 413, _too_large())
        if self.freed is None:
            self.freed = asyncio.Condition()
        deadline = asyncio.get_running_loop().time() + self.seconds
        received = 0
        refusal: tuple[int, str] | None = None
        answered = False

        async def bounded_receive():
            nonlocal received, refusal
            try:
                async with asyncio.timeout_at(deadline):  # no task of its own, unlike wait_for
                    message = await receive()
                    piece = len(message.get("body", b""))
                    if received + piece > limits.MAX_REQUEST_BYTES:
                        refusal = (413, _too_large())
                        raise _BodyRefused
                    await self._take(piece)
            except TimeoutError:
                refusal = (408, f"the request body took longer than {self.seconds:g} s to arrive")
                raise _BodyRefused from None
            received += piece
            return message

        async def answer(message):  # the app's answer, unless the body was refused: then ours
            nonlocal answered
            if refusal is None:
                await send(message)
            elif message["type"] == "http.response.start":
                await _refuse(send, *refusal)
            answered = True

        try:
            await self.app(scope, bounded_receive, answer)
        except _BodyRefused:
            if not answered:
                await _refuse(send, *refusal)
        finally:
            await self._give(received)

    async def _take(self, size: int) -> None:
        if size == 0:
            return
        if not self.waiting and self.free >= size:  # the usual case, with no lock: one thread runs the loop
            self.free -= size
            return
        self.waiting += 1
        try:
            async with self.freed:
                await self.freed.wait_for(lambda: self.free >= size)
                self.free -= size
        finally:
            self.waiting -= 1

    async def _give(self, size: int) -> None:
        self.free += size
        if size and self.waiting:
            async with self.freed:
                self.freed.notify_all()


class _BodyRefused(Exception):
    pass


def _too_large() -> str:
    return f"the request body is larger than {limits.size(limits.MAX_REQUEST_BYTES)}, the largest allowed"


async def _refuse(send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def head_timed_protocol(seconds: float):
    """uvicorn's httptools protocol with a bound on the time a request's head may take:
    armed when a connection opens and after each answer, cleared once the head is in. A
    connection that sends nothing, or its head a byte at a time, is closed after `seconds`
    (uvicorn bounds only the wait between requests on a kept-alive connection)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeadTimedProtocol(HttpToolsProtocol):
        head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self):
            self._clear()
            super().on_headers_complete()

        def on_response_complete(self):
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc):
            self._clear()
            super().connection_lost(exc)

        def _arm(self):
            self._clear()
            self.head_timer = self.loop.call_later(seconds, self._too_slow)

        def _clear(self):
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _too_slow(self):
            waiting_for_a_head = self.cycle is None or self.cycle.response_complete
            if waiting_for_a_head and not self.transport.is_closing():
                self.transport.close()

    return HeadTimedProtocol


# ---------------------------------------------------------------- the app


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("imdb_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("imdb_request_seconds", "Time to answer a request, by route", ["route"],
                                 buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                 registry=self.registry)
        self.reviews = Counter("imdb_reviews_scored", "Reviews scored", registry=self.registry)
        self.batch = Histogram("imdb_batch_reviews", "Reviews per scoring batch",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=self.registry)
        self.model = Gauge("imdb_model_info", "The model being served (1), by its md5", ["md5", "path"],
                           registry=self.registry)
        self.reloads = Counter("imdb_model_reloads", "Attempts to load a new model, by outcome", ["outcome"],
                               registry=self.registry)

    def serving(self, model: Model) -> None:
        self.model.clear()
        self.model.labels(md5=model.md5, path=model.path).set(1)


class State:
    def __init__(self, path: Path, batch_reviews: int, threads: int):
        self.path = path
        self.metrics = Metrics()
        self.model: Model | None = None
        self.batcher = Batcher(batch_reviews, threads, self._count_batch)
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load")
        self.reloading = asyncio.Lock()
        self.signature = _signature(path)

    def _count_batch(self, size: int) -> None:
        self.metrics.batch.observe(size)
        self.metrics.reviews.inc(size)

    def ready_model(self) -> Model:
        if self.model is None:
            raise HTTPException(503, "no model is loaded yet")
        return self.model

    async def reload(self, why: str) -> None:
        """Loads the bundle anew in the loader thread and swaps it in if it checks out."""
        async with self.reloading:
            self.signature = _signature(self.path)
            try:
                model = await asyncio.get_running_loop().run_in_executor(self.loader, load_model, self.path)
            except (UserError, OSError, ValueError, MemoryError) as error:
                self.metrics.reloads.labels("refused").inc()
                kept = self.model.md5 if self.model else "none"
                log.error("%s: refused the new %s (%s); still serving %s", PROG, self.path, error, kept)
                return
            previous = self.model.md5 if self.model else "none"
            self.model = model
            self.metrics.serving(model)
            self.metrics.reloads.labels("loaded").inc()
            log.warning("%s: serving %s (%s; was %s)", PROG, model.md5, why, previous)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_POLL_SECONDS)
            signature = _signature(self.path)
            if signature is not None and signature != self.signature:
                await self.reload("the file changed")


def create_app(path: Path, batch_reviews: int = DEFAULT_BATCH_REVIEWS, seconds: float = limits.REQUEST_SECONDS,
               threads: int = DEFAULT_THREADS, model: Model | None = None) -> FastAPI:
    """The app serving the bundle at path; `model`, when given, is that bundle already loaded."""
    state = State(path, batch_reviews, threads)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state.model = model or await asyncio.get_running_loop().run_in_executor(state.loader, load_model, path)
        state.metrics.serving(state.model)
        state.batcher.start()
        watcher = asyncio.get_running_loop().create_task(state.watch())
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(state.reload("SIGHUP")))
        yield
        watcher.cancel()
        await state.batcher.stop()
        state.loader.shutdown(wait=False)

    app = FastAPI(title="IMDB sentiment", version="1", lifespan=lifespan,
                  description="Deep Learning with Python 3.4's review classifier, served from its inference bundle.")
    app.state.serving = state

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        details = [{"loc": list(item.get("loc", ())), "msg": item.get("msg", "")} for item in error.errors()]
        return json_response({"detail": details}, 422)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's and Starlette's own (a 404, a body not parsed)
    async def refused(request: Request, error: StarletteHTTPException):
        detail = error.detail
        if error.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's words
            detail = "the request body is not JSON in UTF-8"
        return json_response({"detail": detail}, error.status_code)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception):  # never a traceback to the client
        log.exception("%s: %s %s failed", PROG, request.method, request.url.path)
        return json_response({"detail": "the server failed to answer this request"}, 500)

    @app.post("/predict", summary="Score one review or a batch")
    async def predict(request: PredictRequest) -> Response:
        if (request.text is None) == (request.texts is None):
            raise HTTPException(422, 'expected "text" (one review) or "texts" (a list of them), not both')
        texts = [request.text] if request.text is not None else request.texts
        _check_reviews(texts)
        model = state.ready_model()
        probabilities = await state.batcher.score(model, texts)
        return Response(predict_answer(model, probabilities), media_type="application/json")

    @app.post("/explain", summary="The words that push a review's score each way")
    async def explain(request: ExplainRequest) -> Response:
        _check_reviews([request.text])
        model = state.ready_model()
        loop = asyncio.get_running_loop()
        try:
            explanation = await loop.run_in_executor(state.batcher.thread, model.scorer.explain, request.text,
                                                     request.top)
            probabilities = await state.batcher.score(model, [request.text])
        except limits.LimitError as error:
            raise HTTPException(413, str(error)) from None
        return json_response({"model": {"name": MODEL_NAME, "md5": model.md5},
                              **predictions(model, probabilities)[0],
                              "explanation": {str(way): [[word, effect] for word, effect in words]
                                              for way, words in explanation.items()}})

    @app.get("/healthz", summary="Alive")
    async def healthz() -> Response:
        return json_response({"status": "alive"})

    @app.get("/readyz", summary="A model is loaded")
    async def readyz() -> Response:
        model = state.ready_model()
        return json_response({"status": "ready", "model": {"name": MODEL_NAME, "md5": model.md5}})

    @app.get("/model", summary="The model being served")
    async def describe() -> Response:
        return json_response(state.ready_model().identity())

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # The Open Inference Protocol (KServe V2)
    @app.get("/v2/health/live", summary="Open Inference Protocol: alive")
    async def v2_live() -> Response:
        return json_response({"live": True})

    @app.get("/v2/health/ready", summary="Open Inference Protocol: ready")
    async def v2_ready() -> Response:
        state.ready_model()
        return json_response({"ready": True})

    @app.get("/v2/models/{name}", summary="Open Inference Protocol: model metadata")
    async def v2_metadata(name: str) -> Response:
        model = _named(state, name)
        outputs = len(model.classes) if len(model.classes) > 2 else 1
        return json_response({
            "name": MODEL_NAME, "versions": [model.md5], "platform": "imdb-sentiment-bundle",
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1, outputs]},
                        {"name": "label", "datatype": "BYTES", "shape": [-1]}],
        })

    @app.post("/v2/models/{name}/infer", summary="Open Inference Protocol: score reviews")
    async def v2_infer(name: str, request: InferRequest) -> Response:
        model = _named(state, name)
        tensor = request.inputs[0]
        if tensor.datatype != "BYTES" or tensor.shape != [len(tensor.data)]:
            raise HTTPException(422, 'expected one input of datatype "BYTES" and shape [n], a review per element')
        _check_reviews(tensor.data)
        probabilities = await state.batcher.score(model, tensor.data)
        columns = 1 if probabilities.ndim == 1 else probabilities.shape[1]
        return json_response({
            "model_name": MODEL_NAME, "model_version": model.md5, "id": request.id or "",
            "outputs": [
                {"name": "probability", "datatype": "FP32", "shape": [len(tensor.data), columns],
                 "data": np.ravel(probabilities)},
                {"name": "label", "datatype": "BYTES", "shape": [len(tensor.data)],
                 "data": [str(label) for label in model.scorer.labels(probabilities)]},
            ],
        })

    return Bounded(PredictFastPath(app, state), seconds, state.metrics)  # type: ignore[return-value]


def _named(state: State, name: str) -> Model:
    if name != MODEL_NAME:
        raise HTTPException(404, f"no model named {name!r}; this server serves {MODEL_NAME!r}")
    return state.ready_model()


# ---------------------------------------------------------------- the command


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=f"a bundle to serve (default: the project's {paths.BUNDLE})")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"(default: {DEFAULT_PORT})")
    parser.add_argument("--batch-reviews", type=int, default=DEFAULT_BATCH_REVIEWS,
                        help=f"the most reviews scored at once (default: {DEFAULT_BATCH_REVIEWS})")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"threads that score batches (default: {DEFAULT_THREADS}; "
                        f"at most {limits.MAX_SERVE_THREADS})")
    parser.add_argument("--request-seconds", type=float, default=limits.REQUEST_SECONDS,
                        help="the longest a request's head, and then its body, may take to arrive "
                        f"(default: {limits.REQUEST_SECONDS}; at most {limits.MAX_REQUEST_SECONDS})")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: expected 0 to 65535")
    if not 1 <= args.batch_reviews <= limits.MAX_SERVE_REVIEWS:
        parser.error(f"--batch-reviews {args.batch_reviews}: expected 1 to {limits.MAX_SERVE_REVIEWS}")
    if not 1 <= args.threads <= limits.MAX_SERVE_THREADS:
        parser.error(f"--threads {args.threads}: expected 1 to {limits.MAX_SERVE_THREADS}")
    if not 0.1 <= args.request_seconds <= limits.MAX_REQUEST_SECONDS:
        parser.error(f"--request-seconds {args.request_seconds:g}: expected 0.1 to {limits.MAX_REQUEST_SECONDS}")
    return args


def model_path(model: str | None) -> Path:
    if model is not None:
        return Path(model)
    from pipeline.commands.predict import PROJECT_MARKER, project_root

    root = project_root(Path.cwd())
    if root is None:
        raise UserError(f"no model to serve: {Path.cwd()} is not inside the project (no {PROJECT_MARKER} here or "
                        f"above); run {PROG} in the project, or give --model PATH")
    return Path(os.path.relpath(root / paths.BUNDLE))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    path = model_path(args.model)
    logging.basicConfig(format="%(message)s", level=logging.INFO, stream=sys.stderr)
    model = load_model(path)  # a bad bundle is one line of error before the server starts
    import uvicorn

    config = uvicorn.Config(
        create_app(path, args.batch_reviews, seconds=args.request_seconds, threads=args.threads, model=model),
        host=args.host,
        port=args.port, log_level="warning", access_log=False, timeout_keep_alive=limits.KEEP_ALIVE_SECONDS,
        backlog=2048, loop="auto", http=head_timed_protocol(args.request_seconds), lifespan="on",
        proxy_headers=False,  # nothing here reads the client's address
    )
    server = uvicorn.Server(config)
    log.warning("%s: serving %s (%s) at http://%s:%d; docs at /docs", PROG, model.md5, path, args.host, args.port)
    server.run()


def cli(argv: list[str] | None = None) -> None:
    run(lambda: main(argv))


if __name__ == "__main__":
    cli()
