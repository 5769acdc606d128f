"""``dfdetect serve``: the REST API and the page, against real servers on 127.0.0.1 over the exported smoke
model (``smoke_export``) and real clips (``dfdetect.sample_media``).

One ``Scorer`` (one model load) serves every test; two uvicorn servers share it: ``main`` (queue of 4, 1 MB
uploads) and ``guarded`` (a token, a queue of 1, a 1 s read timeout). Raw sockets play the clients that stall,
disconnect or announce too much. After each bad input the upload folder must be empty and the server still
answer.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

import dfdetect
from dfdetect.media import write_video
from dfdetect.sample_media import face_photo, several_faces_clip, talking_clip, tone

BOUNDARY = "dfdetect-test-boundary"
TOKEN = "s3cret-token"


# --- clients -----------------------------------------------------------------------------------------------
def form_body(data: bytes, filename: str = "clip.mp4", fields: dict[str, str] | None = None) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 60) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    hdrs = dict(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


def predict(server, data: bytes, filename: str = "clip.mp4", query: str = "", headers: dict | None = None):
    status, hdrs, body = request(server, "POST", "/v1/predict" + query, form_body(data, filename), headers)
    return status, hdrs, json.loads(body)


def partial_upload(server, headers: dict | None = None) -> socket.socket:
    """A client that announces a 200 kB upload, sends its first bytes and then stalls (the socket is open)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = form_body(b"")[: -len(f"\r\n--{BOUNDARY}--\r\n")]
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Content-Type: multipart/form-data; "
              f"boundary={BOUNDARY}\r\nContent-Length: 200000\r\n\r\n".encode() + head + b"\x00" * 4096)
    return s


def read_reply(s: socket.socket, timeout: float = 10.0) -> str:
    """A whole HTTP response from a raw socket (its head and body may come in separate packets)."""
    s.settimeout(timeout)
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(x.split(b":")[1]) for x in head.lower().split(b"\r\n") if x.startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                return data.decode("latin-1")
        chunk = s.recv(65536)
        if not chunk:
            return data.decode("latin-1")
        data += chunk


def wait_for(cond, timeout: float = 15.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def uploads(server) -> list[Path]:
    return list(server.app.state.upload_dir.iterdir())


def still_serving(server) -> None:
    """After a bad input: nothing left in the upload folder, the queue empty, and the server answers."""
    wait_for(lambda: not uploads(server) and server.app.state.active == 0, what="an empty upload folder")
    status, _, body = request(server, "GET", "/v1/health")
    assert status == 200 and json.loads(body)["status"] == "ok"


# --- fixtures ----------------------------------------------------------------------------------------------
class Server:
    """A uvicorn server in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 60, "the server to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture(scope="module")
def scorer(smoke_export):
    from dfdetect.predict import Detector
    from dfdetect.serve import Scorer

    s = Scorer(Detector(smoke_export))
    yield s
    s.close()


@pytest.fixture(scope="module")
def main(scorer, tmp_path_factory):
    from dfdetect.serve import MB, Settings, create_app

    srv = Server(create_app(scorer, Settings(max_upload_bytes=1 * MB, queue_size=4, read_timeout=10,
                                             tmp_dir=str(tmp_path_factory.mktemp("main-uploads")))))
    yield srv
    folder = srv.app.state.upload_dir
    srv.stop()
    assert not folder.exists()  # removed at shutdown


@pytest.fixture(scope="module")
def guarded(scorer, tmp_path_factory):
    from dfdetect.serve import Settings, create_app

    srv = Server(create_app(scorer, Settings(token=TOKEN, queue_size=1, read_timeout=1.0,
                                             tmp_dir=str(tmp_path_factory.mktemp("guarded-uploads")))))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Short clips (2 s) and bad files, as bytes on disk."""
    import cv2

    d = tmp_path_factory.mktemp("serve-clips")
    talking_clip(d / "talk.mp4", seconds=2.0)
    talking_clip(d / "mute.mp4", seconds=2.0, audio=False)
    several_faces_clip(d / "two.mp4", seconds=2.0)  # two people side by side
    write_video(d / "noface.mp4", [np.full((120, 160, 3), 60, np.uint8)] * 24, fps=12, audio=tone(2.0))
    data = (d / "talk.mp4").read_bytes()
    (d / "broken.mp4").write_bytes(data[: len(data) // 3])  # cut short: a container with no index
    ok, jpeg = cv2.imencode(".jpg", face_photo("astronaut")[..., ::-1])
    (d / "photo.mp4").write_bytes(jpeg.tobytes())  # a photograph renamed .mp4
    with wave.open(str(d / "voice.mp4"), "wb") as w:  # a sound file renamed .mp4
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((tone(1.0) * 32767).astype("<i2").tobytes())
    (d / "empty.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (d / "playlist.mp4").write_bytes(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n")
    return d


# --- the API -----------------------------------------------------------------------------------------------
def test_predict_answers_what_predict_json_prints(main, scorer, clips):
    from dfdetect.predict import VERDICT_FIELDS, verdict_json

    status, _, v = predict(main, (clips / "talk.mp4").read_bytes(), filename="../../etc/talk.mp4")
    assert status == 200, v
    assert list(v) == VERDICT_FIELDS and v["status"] == "ok"
    assert v["path"] == "talk.mp4"  # the client's name, shown, never a path on the server
    assert v["has_audio"] and v["face_ratio"] > 0.9 and v["windows"] >= 2 and 0 <= v["score"] <= 1
    ref = verdict_json(scorer.detector.predict_video(clips / "talk.mp4"))
    for k in VERDICT_FIELDS:
        if k not in ("path", "seconds"):
            assert v[k] == ref[k], k
    still_serving(main)


def test_explain_returns_images(main, clips):
    # a name matplotlib would read as mathematics, drawn in the timeline's title
    status, _, v = predict(main, (clips / "talk.mp4").read_bytes(), "cost $5.mp4", query="?explain=true")
    assert status == 200 and v["path"] == "cost $5.mp4" and set(v["explanations"]) == {"faces", "spectrogram", "timeline"}
    for url in v["explanations"].values():
        s, hdrs, png = request(main, "GET", url)
        assert s == 200 and hdrs["content-type"] == "image/png" and png.startswith(b"\x89PNG")
    assert request(main, "GET", "/v1/explanations/nope/faces.png")[0] == 404
    still_serving(main)


def test_no_face_and_no_audio_are_verdicts(main, clips):
    status, _, v = predict(main, (clips / "noface.mp4").read_bytes())
    assert status == 200 and v["status"] == "ok" and v["label"] == "uncertain" and v["score"] is None
    assert v["face_ratio"] == 0 and v["reason"].startswith("no face found")
    status, _, v = predict(main, (clips / "mute.mp4").read_bytes())
    assert status == 200 and v["status"] == "ok" and not v["has_audio"] and "no audio" in v["reason"]
    still_serving(main)


@pytest.mark.parametrize("name, reason", [
    ("broken.mp4", None),  # None: whatever `dfdetect predict` says of the same file
    ("photo.mp4", "a still image (mjpeg), not a video"),
    ("voice.mp4", "no video stream (audio-only file)"),
    ("empty.mp4", "empty file (0 bytes)"),
    ("random.mp4", "not a readable media file ("),
    ("playlist.mp4", "not a readable media file ("),  # text FFmpeg would follow: refused before FFmpeg
])
def test_bad_files_get_422_with_the_clis_reason(main, scorer, clips, name, reason):
    status, _, v = predict(main, (clips / name).read_bytes(), filename=name)
    assert status == 422 and v["status"] == "failed", v
    if reason is None:
        reason = scorer.detector.predict_video(clips / name).reason
        assert reason.startswith("not a readable media file (")
    assert v["reason"].startswith(reason) and "\n" not in v["reason"]
    assert str(main.app.state.upload_dir) not in v["reason"]
    still_serving(main)


def test_not_multipart_and_no_file(main):
    status, _, body = request(main, "POST", "/v1/predict", b"{}", {"Content-Type": "application/json"})
    assert status == 422 and "multipart/form-data" in json.loads(body)["reason"]
    body = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="explain"\r\n\r\ntrue\r\n--{BOUNDARY}--\r\n'
    status, _, out = request(main, "POST", "/v1/predict", body.encode())
    assert status == 422 and json.loads(out)["reason"].startswith("no file")
    status, _, out = request(main, "POST", "/v1/predict", f"--{BOUNDARY}\r\nno headers here".encode())
    assert status == 422 and json.loads(out)["reason"].startswith("malformed multipart")
    still_serving(main)


def test_too_large_is_refused_without_reading_the_body(main):
    # announced: answered from Content-Length before the body is read (only 1 kB of 50 MB is ever sent)
    s = socket.create_connection(("127.0.0.1", main.port), timeout=10)
    s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}"
              f"\r\nContent-Length: {50 * 2**20}\r\n\r\n".encode() + b"\x00" * 1024)
    reply = read_reply(s)
    s.close()
    assert reply.startswith("HTTP/1.1 413") and "larger than the server's limit of 1 MB" in reply
    # not announced (chunked): cut off once the limit is passed
    conn = http.client.HTTPConnection("127.0.0.1", main.port, timeout=30)
    big = form_body(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (2 * 2**20))
    conn.request("POST", "/v1/predict", body=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                 headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 413 and "limit" in json.loads(r.read())["reason"]
    conn.close()
    still_serving(main)


def test_token_is_required(guarded, clips):
    status, hdrs, body = request(guarded, "GET", "/v1/model")
    assert status == 401 and hdrs["www-authenticate"] == "Bearer" and "Bearer" in json.loads(body)["reason"]
    assert request(guarded, "GET", "/v1/model", headers={"Authorization": "Bearer wrong"})[0] == 401
    status, _, v = predict(guarded, (clips / "talk.mp4").read_bytes())
    assert status == 401 and v["status"] == "failed"
    status, _, body = request(guarded, "GET", "/v1/model", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "threshold" in json.loads(body)
    status, _, v = predict(guarded, (clips / "talk.mp4").read_bytes(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and v["status"] == "ok"
    status, _, body = request(guarded, "GET", "/v1/health")  # a load balancer's probe needs no token
    assert status == 200 and json.loads(body)["auth"] is True
    still_serving(guarded)


def test_queue_full_is_503_with_retry_after(main, clips):
    held = [partial_upload(main) for _ in range(4)]  # the queue admits 4: each holds a slot while uploading
    try:
        wait_for(lambda: main.app.state.active == 4 and len(uploads(main)) == 4, what="4 admitted uploads")
        status, hdrs, v = predict(main, (clips / "talk.mp4").read_bytes())
        assert status == 503 and int(hdrs["retry-after"]) >= 1 and "busy" in v["reason"]
    finally:
        for s in held:
            s.close()
    still_serving(main)
    assert predict(main, (clips / "talk.mp4").read_bytes())[0] == 200


def test_disconnect_mid_upload_leaves_no_file(main):
    s = partial_upload(main)
    wait_for(lambda: len(uploads(main)) == 1, what="the upload's temporary file")
    s.close()  # gone mid-upload
    still_serving(main)


def test_slow_client_times_out(guarded):
    s = partial_upload(guarded, {"Authorization": f"Bearer {TOKEN}"})
    try:
        # a 408 comes only from an admitted upload, its file made: no need to race the 1 s to see the file
        reply = read_reply(s)  # the server gives up after its 1 s read timeout
        assert reply.startswith("HTTP/1.1 408") and "too slow" in reply
    finally:
        s.close()
    still_serving(guarded)


def test_env_token_reaches_the_server(monkeypatch):
    import dfdetect.serve
    from dfdetect.cli import main as cli

    seen = {}
    monkeypatch.setattr(dfdetect.serve, "serve", lambda model, host, port, settings: seen.update(
        host=host, port=port, settings=settings))
    monkeypatch.setenv("DFDETECT_TOKEN", "from-env")
    assert cli(["serve", "--model", "M", "--max-upload-mb", "5", "--queue", "2"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000  # this machine only, unless told otherwise
    st = seen["settings"]
    assert (st.token, st.max_upload_bytes, st.queue_size) == ("from-env", 5 * 2**20, 2)


def test_port_in_use_and_no_model_are_usage_errors(tmp_path, capsys):
    from dfdetect.cli import main as cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert cli(["serve", "--port", str(port), "--model", str(tmp_path)]) == 2  # before any model loads
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert cli(["serve", "--port", "0", "--model", str(tmp_path)]) == 2  # a folder without a model card
    assert "model_card.json" in capsys.readouterr().err


def test_sniff_and_names():
    from dfdetect.serve import display_name, sniff

    assert sniff(b"\x00\x00\x00\x18ftypisom") == "mp4" and sniff(b"\x1a\x45\xdf\xa3\x01") == "matroska"
    assert sniff(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi" and sniff(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff(b"#EXTM3U\n") is None and sniff(b"ffconcat version 1.0") is None and sniff(b"") is None
    assert display_name("../../etc/passwd") == "passwd" and display_name("C:\\x\\a.mp4") == "a.mp4"
    assert display_name("") == "upload" and display_name("a\x00b\nc.mp4") == "abc.mp4"


def test_page_is_self_contained_and_docs_answer(main):
    status, hdrs, html = request(main, "GET", "/")
    assert status == 200 and "default-src 'self'" in hdrs["content-security-policy"]
    page = html.decode()
    for name in ("app.js", "style.css"):
        s, _, body = request(main, "GET", f"/static/{name}")
        assert s == 200 and body
        page += body.decode()
    assert not [u for u in ("http://", "https://") if u in page.replace("http://www.w3.org/2000/svg", "")]
    assert request(main, "GET", "/static/..%2Fserve.py")[0] == 404
    # the API docs work offline too: Swagger UI from the installed package, nothing from another host
    status, _, docs = request(main, "GET", "/docs")
    assert status == 200 and not [u for u in ("http://", "https://") if u in docs.decode()], docs[:400]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        s, _, body = request(main, "GET", f"/docs-static/{asset}")
        assert s == 200 and f"/docs-static/{asset}" in docs.decode() and len(body) > 10_000
    spec = json.loads(request(main, "GET", "/openapi.json")[2])
    assert "multipart/form-data" in spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]


# --- the page, in a real browser -----------------------------------------------------------------------------
@pytest.mark.browser  # skipped without chromium or playwright, except in CI (see tests/conftest.py)
def test_page_in_headless_chromium(main, clips, tmp_path):
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            # a phone's viewport: the page must be readable there without sideways scrolling
            page = browser.new_page(viewport={"width": 412, "height": 915}, device_scale_factor=1)
            external = []
            page.on("request", lambda r: external.append(r.url) if not r.url.startswith(
                (main.url, "blob:", "data:")) else None)
            page.goto(main.url + "/")
            page.wait_for_selector("form[data-ready='1']", timeout=20_000)
            page.set_input_files("#file", str(clips / "talk.mp4"))
            page.click("#go")
            page.wait_for_selector("form[data-state='done'], form[data-state='error']", timeout=60_000)
            assert page.get_attribute("#upload", "data-state") == "done", page.inner_text("#status")
            assert page.inner_text("#label").lower() in ("real", "fake", "uncertain")
            assert page.evaluate("document.querySelector('#progress').value") == 100
            assert page.locator("#scores tbody tr").count() == 4
            assert page.locator("#track svg polyline").count() == 1
            widths = page.evaluate("['timeline', 'faces', 'spectrogram'].map("
                                   "k => document.getElementById('img-' + k).naturalWidth)")
            assert all(w > 0 for w in widths), widths
            seen = page.inner_text("#seen")
            assert "A face in 100% of frames" in seen and "Audio: yes" in seen and "Took" in seen
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(tmp_path / "serve-page.png"), full_page=True)
            # two people: each face's score is listed, and which one the verdict is about
            page.set_input_files("#file", str(clips / "two.mp4"))
            page.click("#go")
            page.locator("#seen li", has_text="Face 1").wait_for(timeout=60_000)  # (the CSP forbids eval)
            seen = page.inner_text("#seen")
            assert "Face 0 (left): score" in seen and "Face 1 (right): score" in seen, seen
            assert seen.count("the verdict above is this face's") == 1, seen
            assert "2 faces scored: the verdict is face" in page.inner_text("#notes")
            # the API docs render offline: Swagger UI lists the endpoints from /openapi.json
            page.goto(main.url + "/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert "/v1/predict" in paths and "/v1/health" in paths, paths
        finally:
            browser.close()
    assert not external, external  # no CDN, no fonts, nothing from elsewhere
    assert (tmp_path / "serve-page.png").stat().st_size > 20_000
    still_serving(main)


# --- bench/serve_load.py, small ------------------------------------------------------------------------------
def test_load_bench_small(main):
    """bench/serve_load.py's fixed-seed small mode against the shared server: no errors, the folder empty."""
    path = Path(dfdetect.__file__).resolve().parents[1] / "bench" / "serve_load.py"
    spec = importlib.util.spec_from_file_location("serve_load", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    import os

    result = bench.run_load(main.url, n=16, concurrency=4, seed=0, pid=os.getpid(),
                            upload_dir=main.app.state.upload_dir, seconds=2.0)
    assert result["ok"] == 16 and result["errors"] == 0 and result["busy"] == 0, result
    assert result["upload_dir_empty"] and result["p95_s"] >= result["p50_s"] > 0
    assert bench.problems(result) == [], result
