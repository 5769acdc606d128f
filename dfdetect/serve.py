"""``dfdetect serve``: a web page and a REST API over one loaded model (FastAPI on uvicorn).

- ``GET /v1/health``: ``{"status": "ok", ...}`` with the queue's occupancy; never needs the token.
- ``GET /v1/model``: the exported model's card.
- ``POST /v1/predict`` (multipart form, field ``file``; ``explain=true`` as a query or form field): the JSON
  object ``dfdetect predict --json`` prints for one video (``predict.verdict_json``), plus ``explanations``
  (URLs of the PNGs ``dfdetect.explain`` draws) when asked. Errors are ``{"status": "failed", "reason": ...}``:
  422 unreadable media (the CLI's one-line reasons), 413 too large, 408 a client too slow, 401 no or a wrong
  token, 503 (with ``Retry-After``) when the queue is full, 500 a bug (traceback in the server's log).
- ``GET /``: the page (``dfdetect/web/``: no CDN, no external fonts or scripts); ``/docs``: OpenAPI.

Uploads are streamed, as they arrive, into one private folder (mode 0700) under a random name, so a client's
file name is only ever displayed, never used as a path; the size limit is enforced while reading (and from
Content-Length before reading anything); the first bytes must look like a media container (below) before
FFmpeg sees the file; the file is deleted after scoring, after a failure, a timeout or a disconnect alike.
One thread scores (the face detector and the matplotlib drawing are not thread-safe, and two CPU-bound jobs
at once only slow each other); the queue admits ``queue_size`` requests (uploading, waiting or scoring) and
answers 503 beyond that, before reading their bodies.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import math
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# At module level: FastAPI resolves the handlers' annotations (``request: Request``) from this module's globals.
from fastapi import Request

MB = 1024 * 1024
# Multipart framing (boundaries, part headers) around the file: a body may exceed the file limit by this much.
FRAMING_BYTES = 64 * 1024
EXPLAIN_KINDS = ("faces", "spectrogram", "timeline")
WEB_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
             "style.css": "text/css; charset=utf-8"}
# The page loads nothing from elsewhere; images arrive as blob: URLs (fetched with the token when one is set).
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@dataclass
class Settings:
    """How the server treats requests; ``dfdetect serve``'s flags, and what tests tighten."""

    max_upload_bytes: int = 200 * MB
    token: str | None = None
    queue_size: int = 8  # requests admitted at once: uploading, waiting for the scorer, or being scored
    read_timeout: float = 30.0  # seconds an upload may stall between two chunks
    upload_timeout: float = 600.0  # seconds a whole upload may take
    tmp_dir: str | None = None  # parent of the private upload folder (default: the system temp folder)
    explain_keep: int = 64  # explanations kept in memory for their URLs, newest first
    log_file: Path | None = None  # where tracebacks of internal errors go


class Rejected(Exception):
    """A request answered with ``status`` and ``{"status": "failed", "reason": ...}``."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


# --- content check ---------------------------------------------------------------------------------------
def sniff(head: bytes) -> str | None:
    """What the first bytes of a file say it is (``mp4``, ``matroska``, ``jpeg``...), or None for anything
    else. Only binary media containers pass: FFmpeg also reads text formats (HLS playlists, concat lists, SDP)
    that make it open other files or URLs, which an upload must never do. Images and audio pass too, so that
    FFmpeg gives them the CLI's own reasons (a still image, no video stream)."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"):
        return "mp4"  # ISO BMFF and QuickTime: mp4, mov, m4v, 3gp, m4a
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # mkv, webm
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX", b"WAVE", b"WEBP"):
        return head[8:12].decode().strip().lower()
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"  # wmv
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg-ps"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "mpeg-ts"
    if len(head) > 388 and head[4] == head[196] == head[388] == 0x47:
        return "m2ts"  # mts: 4-byte timestamps before each 188-byte packet
    if head.startswith(b"OggS"):
        return "ogg"
    for magic, kind in ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF8", "gif"),
                        (b"BM", "bmp"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"ID3", "mp3"),
                        (b"fLaC", "flac")):
        if head.startswith(magic):
            return kind
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mpeg-audio"
    return None


def display_name(filename: str | None) -> str:
    """A client's file name as shown in the verdict: its last path part, printable, at most 120 characters.
    Display only: the upload is stored under a random name."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:120]
    return name or "upload"


# --- the scorer ------------------------------------------------------------------------------------------
class Scorer:
    """One loaded ``Detector`` and the one thread that uses it; shared by every app made on it."""

    def __init__(self, detector) -> None:
        self.detector = detector
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="dfdetect-score")
        self.lock = threading.Lock()  # belt and braces: the detector is never used by two threads
        self.seconds = collections.deque(maxlen=20)  # recent job times, for Retry-After

    def typical_seconds(self) -> float:
        return float(sum(self.seconds) / len(self.seconds)) if self.seconds else 5.0

    def score(self, path: Path, name: str, explain: bool, work: Path) -> tuple[Any, dict[str, bytes]]:
        """Scores ``path`` (then deletes it, whatever happens); returns the verdict, named ``name``, and the
        explanation PNGs' bytes by kind when asked (drawn under ``work``, deleted once read)."""
        from dfdetect.explain import explain_video

        t0 = time.time()
        images: dict[str, bytes] = {}
        out = work / f"explain-{path.stem}"
        try:
            with self.lock:
                if explain:
                    # matplotlib reads $...$ as mathematics: a name with one $ would fail to draw
                    v, files = explain_video(self.detector, path, out, title=name.replace("$", r"\$"))
                    for f in files:
                        kind = f.stem.rsplit("_", 1)[-1]
                        if kind in EXPLAIN_KINDS:
                            images[kind] = f.read_bytes()
                else:
                    v = self.detector.predict_video(path)
        finally:
            path.unlink(missing_ok=True)
            shutil.rmtree(out, ignore_errors=True)
            self.seconds.append(time.time() - t0)
        # the verdict names the client's file, never the server's temporary path
        v.reason = v.reason.replace(str(path), name)
        v.path = name
        return v, images

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.detector.close()


# --- multipart, streamed ---------------------------------------------------------------------------------
class _FormSink:
    """python-multipart callbacks: the ``file`` part goes to an open file, small fields to a dict."""

    def __init__(self, fh, limit: int) -> None:
        self.fh, self.limit = fh, limit
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_bytes = 0
        self.seen_file = False
        self.head = bytearray()  # the file's first bytes, for sniff()
        self._name: str | None = None
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._value = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._hfield,
                "on_header_value": self._hvalue, "on_header_end": self._hend,
                "on_headers_finished": self._headers_done, "on_part_data": self._data, "on_part_end": self._end}

    def _part_begin(self) -> None:
        self._headers, self._name, self._value = {}, None, bytearray()

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _hend(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field, self._header_value = bytearray(), bytearray()

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, opts = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = opts.get(b"name", b"").decode("utf-8", "replace")
        if self._name == "file":
            if self.seen_file:
                raise Rejected(422, "more than one file: send one video per request")
            self.seen_file = True
            self.filename = opts.get(b"filename", b"").decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._name == "file":
            self.file_bytes += len(chunk)
            if self.file_bytes > self.limit:
                raise Rejected(413, f"file larger than the server's limit of {self.limit / MB:g} MB")
            if len(self.head) < 1024:
                self.head += chunk[:1024 - len(self.head)]
            self.fh.write(chunk)
        elif len(self._value) + len(chunk) <= 1024:  # a form field is a flag, not a payload
            self._value += chunk

    def _end(self) -> None:
        if self._name and self._name != "file":
            self.fields[self._name] = bytes(self._value).decode("utf-8", "replace")


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


# --- the app ---------------------------------------------------------------------------------------------
def _offline_docs(app) -> None:
    """``/docs``: Swagger UI from the package ``fastapi-offline`` (its scripts and styles under
    ``/docs-static``), so the API docs, like the page, need nothing from outside the machine."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from fastapi_offline.core import _STATIC_PATH

    app.mount("/docs-static", StaticFiles(directory=str(_STATIC_PATH)), name="docs-static")

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="dfdetect API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon.png")



def create_app(scorer: Scorer, settings: Settings | None = None):
    """The FastAPI app over ``scorer``. Its private upload folder is made now and removed at shutdown
    (``app.state.upload_dir``); ``app.state.active`` counts the requests the queue holds."""
    from fastapi import Depends, FastAPI
    from fastapi.responses import JSONResponse, Response
    from starlette.requests import ClientDisconnect

    from dfdetect.errors import default_log, log_traceback, one_line
    from dfdetect.predict import verdict_json

    settings = settings or Settings()
    token = settings.token or None
    log_file = settings.log_file or default_log("serve")
    upload_dir = Path(tempfile.mkdtemp(prefix="dfdetect-serve-", dir=settings.tmp_dir))  # mode 0700
    card = scorer.detector.card
    explanations: collections.OrderedDict[str, dict[str, bytes]] = collections.OrderedDict()

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        shutil.rmtree(upload_dir, ignore_errors=True)

    # docs_url=None: FastAPI's own /docs loads Swagger UI from a CDN, blank on an offline machine; the one below
    # serves the copy fastapi-offline ships (a Swagger UI that reads OpenAPI 3.1, which FastAPI writes)
    app = FastAPI(title="dfdetect", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Multimodal deepfake video detector: face, voice and their agreement. "
                              "POST a video to /v1/predict; the page at / does the same in a browser.")
    _offline_docs(app)
    app.state.upload_dir = upload_dir
    app.state.active = 0
    app.state.settings = settings

    def failed(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"status": "failed", "reason": reason}, status_code=status, headers=headers)

    @app.exception_handler(Rejected)
    async def _rejected(request: Request, exc: Rejected):
        return failed(exc.status, exc.reason, exc.headers)

    async def authorised(request: Request) -> None:
        if token is None:
            return
        got = request.headers.get("authorization", "")
        scheme, _, value = got.partition(" ")
        # compare_digest: the answer's timing says nothing about how much of a guess was right
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise Rejected(401, "missing or wrong token: send the header 'Authorization: Bearer TOKEN'",
                           {"WWW-Authenticate": "Bearer"})

    @app.get("/v1/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Whether the server is up, its model, and how full its queue is (no token needed)."""
        return {"status": "ok", "version": _version(), "model": card.get("name") or scorer.detector.model_dir.name,
                "queue": {"active": app.state.active, "size": settings.queue_size},
                "auth": token is not None, "max_upload_mb": round(settings.max_upload_bytes / MB, 3)}

    @app.get("/v1/model", tags=["service"], dependencies=[Depends(authorised)])
    async def model_card() -> dict[str, Any]:
        """The exported model's card (``model_card.json``): threshold, training data, intended use."""
        return card

    multipart_doc = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description": "the video"},
                       "explain": {"type": "boolean", "description": "also draw the explanations"}}}}}}}

    @app.post("/v1/predict", tags=["predict"], dependencies=[Depends(authorised)], openapi_extra=multipart_doc,
              responses={413: {"description": "too large"}, 422: {"description": "unreadable media"},
                         503: {"description": "queue full; see Retry-After"}})
    async def predict(request: Request, explain: bool = False):
        """Scores one uploaded video: the object ``dfdetect predict --json`` prints, plus ``explanations``
        (image URLs) with ``explain=true``."""
        if app.state.active >= settings.queue_size:
            wait = scorer.typical_seconds() * (app.state.active + 1)
            raise Rejected(503, f"the server is busy ({app.state.active} requests queued): retry later",
                           {"Retry-After": str(max(1, min(600, math.ceil(wait))))})
        app.state.active += 1
        handed_over = False  # once the scorer has the job, it frees the slot (and deletes the file)
        fd, name = tempfile.mkstemp(dir=upload_dir, prefix="upload-", suffix=".bin")
        path = Path(name)
        try:
            sink = await _receive(request, os.fdopen(fd, "wb"), settings)
            if not sink.seen_file:
                raise Rejected(422, "no file: send the video as the multipart form field 'file'")
            shown = display_name(sink.filename)
            if sink.file_bytes == 0:
                raise Rejected(422, "empty file (0 bytes)")
            kind = sniff(bytes(sink.head))
            if kind is None:
                raise Rejected(422, "not a readable media file (its content is no known video container)")
            explain = explain or _truthy(sink.fields.get("explain"))
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(scorer.executor, scorer.score, path, shown, explain, upload_dir)
            handed_over = True
            future.add_done_callback(lambda _: _release(app))
            try:
                v, images = await future
            except Exception as e:  # noqa: BLE001 - a bug in the drawing: this request fails, the server serves on
                where = log_traceback(log_file, "dfdetect serve: internal error", traceback.format_exc())
                print(f"internal error on an upload: {one_line(e)} (traceback: {where})", file=sys.stderr)
                return JSONResponse({"status": "error", "reason": f"internal error: {one_line(e)}"}, 500)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody reads it; the file goes in finally
        finally:
            if not handed_over:
                path.unlink(missing_ok=True)
                _release(app)
        body = verdict_json(v)
        if v.status == "error":  # a bug, not bad media: the traceback to the log, one line to the client
            where = log_traceback(log_file, f"dfdetect serve: internal error on {v.path}", v.traceback)
            print(f"internal error on an upload: {v.reason} (traceback: {where})", file=sys.stderr)
            return JSONResponse(body, status_code=500)
        if v.status == "failed":
            return JSONResponse(body, status_code=422)
        if explain:
            key = secrets.token_urlsafe(12)
            explanations[key] = images
            while len(explanations) > settings.explain_keep:
                explanations.popitem(last=False)
            body["explanations"] = {k: f"/v1/explanations/{key}/{k}.png" for k in EXPLAIN_KINDS if k in images}
        return body

    @app.get("/v1/explanations/{key}/{kind}.png", tags=["predict"], dependencies=[Depends(authorised)],
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def explanation(key: str, kind: str):
        """One explanation image of a recent ``explain=true`` prediction (the newest ones are kept)."""
        png = explanations.get(key, {}).get(kind)
        if png is None:
            raise Rejected(404, "no such explanation (only the most recent ones are kept)")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    def page_file(name: str) -> Response:
        data = resources.files("dfdetect").joinpath("web", name).read_bytes()
        return Response(data, media_type=WEB_FILES[name], headers={
            "Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def index():
        return page_file("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name not in WEB_FILES:  # a fixed list: no path from a request reaches the file system
            raise Rejected(404, "not found")
        return page_file(name)

    return app


def _release(app) -> None:
    app.state.active = max(0, app.state.active - 1)


async def _receive(request, fh, settings: Settings) -> _FormSink:
    """Streams a multipart body into ``fh`` (closed on return), enforcing the size limit (Content-Length
    first, then the bytes that arrive) and the read and whole-upload timeouts."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    with fh:
        ctype, opts = parse_options_header(request.headers.get("content-type", ""))
        boundary = opts.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise Rejected(422, "send the video as multipart/form-data, in the field 'file'")
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + FRAMING_BYTES:
            raise Rejected(413, f"file larger than the server's limit of {limit / MB:g} MB")
        sink = _FormSink(fh, limit)
        parser = MultipartParser(boundary, sink.callbacks())
        chunks = request.stream().__aiter__()
        deadline = time.monotonic() + settings.upload_timeout
        received = 0
        while True:
            wait = min(settings.read_timeout, deadline - time.monotonic())
            try:
                chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(wait, 0.001))
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise Rejected(408, "upload too slow: the server stopped waiting for it") from None
            received += len(chunk)
            if received > limit + FRAMING_BYTES:
                raise Rejected(413, f"file larger than the server's limit of {limit / MB:g} MB")
            try:
                if chunk:
                    parser.write(chunk)
            except MultipartParseError as e:  # a broken form is the client's mistake, not a server error
                raise Rejected(422, f"malformed multipart/form-data body ({e})") from None
        parser.finalize()
        return sink


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dfdetect")
    except Exception:  # noqa: BLE001 - a source checkout without metadata still serves
        return "unknown"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a port in use or an unknown host is a usage error (exit 2), found
    before the model spends its seconds loading."""
    from dfdetect.errors import BadArgument

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        raise BadArgument(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(model: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          settings: Settings | None = None, log_level: str = "info") -> None:
    """Loads the model once and serves until Ctrl-C (``dfdetect serve``)."""
    import uvicorn

    from dfdetect.predict import Detector

    sock = listen(host, port)
    try:
        scorer = Scorer(Detector(model))
        try:
            app = create_app(scorer, settings)
            print(f"dfdetect serve: model {scorer.detector.model_dir}, http://{host}:{port}/ (API docs /docs)",
                  file=sys.stderr, flush=True)
            config = uvicorn.Config(app, log_level=log_level, timeout_keep_alive=5, timeout_graceful_shutdown=10)
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            scorer.close()
    finally:
        sock.close()


__all__ = ["Rejected", "Scorer", "Settings", "create_app", "display_name", "listen", "serve", "sniff"]
