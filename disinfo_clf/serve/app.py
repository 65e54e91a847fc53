"""The HTTP API and the analysts' page: :func:`create_app` builds the FastAPI application.

Endpoints: ``POST /v1/predict``, ``POST /v1/match``, ``GET /v1/narratives`` (all behind the bearer
token when one is set), ``GET /healthz``, and the page at ``/``; the OpenAPI schema is at ``/docs``
and ``/openapi.json``.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import Model, __version__, load_model
from .. import match as match_cases
from ..taxonomy import load_taxonomy
from .batching import MicroBatcher, ModelThread
from .schemas import (ErrorOut, Health, Limits, MatchRequest, MatchResponse, NarrativeOut, NarrativesResponse,
                      PredictRequest, PredictResponse, check_limits)

logger = logging.getLogger("disinfo_clf.serve")

PAGE = Path(__file__).with_name("page.html")
PAGE_HEADERS = {
    # The page is self-contained: it loads nothing and talks only to this server.
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 413, 422, 503)}


def create_app(model: Model | str | Path | None = None, *, token: str | None = None, max_body_mb: float = 10.0,
               cors: str | None = None, narratives: str | Path | None = None, batching: bool = True,
               max_wait_ms: float = 5.0, max_batch_texts: int = 64, limits: Limits = Limits()) -> FastAPI:
    """The application serving ``model`` (what :func:`disinfo_clf.predict` accepts: None, ``"default"``,
    ``"fast"``, a model directory, or a loaded :class:`Model`).

    ``token``: every ``/v1/*`` call needs ``Authorization: Bearer TOKEN``; ``max_body_mb``: larger
    request bodies get 413 before they are read; ``cors``: the one browser origin allowed to call the
    API from other pages (none by default); ``narratives``: a narratives file handed to
    :func:`load_model` (only when given); ``batching=False`` runs each request alone;
    ``max_wait_ms`` and ``max_batch_texts`` bound how long and how many texts a batch gathers.
    """
    if isinstance(model, Model):
        loaded = model
    elif narratives is not None:
        loaded = load_model(model, narratives=narratives)
    else:
        loaded = load_model(model)
    if max_body_mb <= 0:
        raise ValueError(f"max_body_mb must be positive, got {max_body_mb!r}")
    descriptions = _descriptions(loaded)
    # Load the encoder, heads and case index now rather than on the first request.
    loaded.predict(["Warm-up text."])
    match_cases(["Warm-up text."], k=1)

    def run_predict(texts: list[str], top_k: Any) -> list[dict[str, Any]]:
        return [p.to_dict() for p in loaded.predict(texts, top_k=top_k)]

    def run_match(texts: list[str], k: Any) -> list[list[dict[str, Any]]]:
        return [[m.to_dict() for m in found] for found in match_cases(texts, k=k)]

    # One thread runs every model call, predict's and match's, so the encoder is never entered twice at once.
    thread = ModelThread("disinfo-model")
    predictor = MicroBatcher(run_predict, max_wait_ms=max_wait_ms, max_texts=max_batch_texts, batching=batching,
                             name="predict", thread=thread)
    matcher = MicroBatcher(run_match, max_wait_ms=max_wait_ms, max_texts=max_batch_texts, batching=batching,
                           name="match", thread=thread)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await predictor.close()
        await matcher.close()

    app = FastAPI(title="disinfo-clf", version=__version__, lifespan=lifespan,
                  description="Which known pro-Kremlin disinformation narrative a text pushes, whether it states "
                              "or debunks it, and which catalogued EUvsDisinfo cases it repeats.")
    app.state.model = loaded
    app.state.predictor = predictor
    app.state.matcher = matcher
    expected = token.encode("utf-8") if token else None
    # BearerToken (below) refuses a wrong token before the body is read; this puts the scheme in /docs.
    guard = [Security(HTTPBearer(auto_error=False, description="The token the server was started with."))] \
        if expected is not None else []

    def checked(body: PredictRequest | MatchRequest, request: Request, option: int | None, most: int,
                name: str) -> list[str]:
        items = body.items()
        problem = check_limits(items, limits, single=body.text is not None)
        if problem is None and option is not None and option > most:
            problem = f"{name}: {option} is more than the largest allowed, {most}"
        if problem is not None:
            raise HTTPException(422, problem)
        request.state.texts = len(items)
        return items

    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS, dependencies=guard,
              summary="Narrative, role, evidence and matched cases of each text")
    async def predict_endpoint(body: PredictRequest, request: Request) -> dict[str, Any]:
        items = checked(body, request, body.top_k, limits.max_top_k, "top_k")
        return {"predictions": await _answer(predictor.submit(items, body.top_k))}

    @app.post("/v1/match", response_model=MatchResponse, responses=_ERRORS, dependencies=guard,
              summary="The k catalogued cases closest to each text")
    async def match_endpoint(body: MatchRequest, request: Request) -> dict[str, Any]:
        items = checked(body, request, body.k, limits.max_k, "k")
        return {"matches": await _answer(matcher.submit(items, body.k))}

    @app.get("/v1/narratives", response_model=NarrativesResponse, responses=_ERRORS,
             dependencies=guard, summary="The narratives the model tells apart")
    async def narratives_endpoint() -> NarrativesResponse:
        names = loaded.names
        return NarrativesResponse(model=loaded.model_id, narratives=[
            NarrativeOut(id=label, name=names.get(label, label), description=descriptions.get(label))
            for label in loaded.labels])

    @app.get("/healthz", response_model=Health, summary="Liveness and the model id")
    async def healthz() -> Health:
        return Health(model=loaded.model_id, version=__version__, token_required=expected is not None)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers=PAGE_HEADERS)

    _install_error_handlers(app)
    # Outermost last: the log sees every answer, CORS answers preflights, the token is checked and the
    # body size limited before the body is read.
    app.add_middleware(BodyLimit, max_bytes=int(max_body_mb * 1024 * 1024))
    if expected is not None:
        app.add_middleware(BearerToken, token=expected)
    if cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=[cors], allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(RequestLog)
    return app


async def _answer(results: Awaitable[Any]) -> Any:
    """``results``, or 503 when a stopping server gives up waiting for them (uvicorn cancels the request)."""
    try:
        return await results
    except asyncio.CancelledError:
        raise HTTPException(503, "the server is shutting down; send the request again later") from None


def _descriptions(model: Model) -> dict[str, str]:
    """Narrative id → description: the shipped taxonomy's, and those of the model's own narratives."""
    described = {n.id: n.description for n in load_taxonomy(check_cues=False)}
    if model.user is not None:
        described.update({n.id: n.description for n in model.user.narratives})
    return described


def _install_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": sentence}``; validation errors name the field (``body.texts[2]: ...``)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        sentences = [_sentence(e) for e in errors]
        if "json" not in request.headers.get("content-type", "") and any(_field(e.get("loc", ())) == "body"
                                                                        for e in errors):
            sentences = ["body: send JSON with the header 'Content-Type: application/json'"]
        detail = [{"field": _field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
                  for e in errors]
        return JSONResponse({"error": "; ".join(sentences), "detail": detail}, status_code=status)


def _field(loc: Any) -> str:
    """``("body", "texts", 2)`` → ``"texts[2]"``; the whole body → ``"body"``."""
    parts = [p for p in loc if p != "body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _sentence(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    field = _field(error.get("loc", ()))
    if kind == "json_invalid":
        where = error.get("loc", ())
        position = f" at character {where[-1]}" if where and isinstance(where[-1], int) else ""
        return f"body: not valid JSON{position} ({error.get('ctx', {}).get('error', 'parse error')}); send a JSON object"
    if kind == "extra_forbidden":
        return (f"{field}: unknown field; a request may only give text or texts, and top_k (predict) or k (match) "
                "- the server's model and case index cannot be chosen by a request")
    if kind == "missing":
        return f"{field}: required"
    if kind in ("model_attributes_type", "dict_type") and field == "body":
        return "body: expected a JSON object such as {\"text\": \"...\"}"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{field}: {message}"


class BearerToken:
    """401 for ``/v1/*`` requests without ``Authorization: Bearer TOKEN`` (compared in constant time),
    before anything else about the request is looked at."""

    def __init__(self, app: ASGIApp, token: bytes) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1/"):
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, value = given.partition(b" ")
            # compare_digest on every request, whatever was sent, so the timing tells nothing.
            good = hmac.compare_digest(value.strip(), self.token)
            if scheme.lower() != b"bearer" or not good:
                await JSONResponse({"error": "missing or wrong token: send the header 'Authorization: Bearer "
                                             "TOKEN' with the token the server was started with"},
                                   status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for request bodies over ``max_bytes``: at once when ``Content-Length`` says so, else as soon
    as the streamed bytes pass the limit (nothing past it is kept)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        mb = self.max_bytes / (1024 * 1024)
        return f"body: larger than the server's limit of {mb:g} MB; send fewer or shorter texts per request"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            status = 413 if length.isdigit() else 400
            message = self._message() if status == 413 else "Content-Length: not a number"
            scope.setdefault("state", {})["texts"] = 0
            await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)


class RequestLog:
    """One log line per request: method, path, status, texts, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = (time.perf_counter() - start) * 1000.0
            logger.info("%s %s %d texts=%d %.1f ms", scope.get("method", "-"), scope.get("path", "-"), status,
                        int(state.get("texts", 0) or 0), ms)
