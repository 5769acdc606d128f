"""Load on `dfdetect serve`: N uploads at concurrency C against a server on 127.0.0.1.

    python bench/serve_load.py --model DIR                 # 200 uploads at concurrency 8 (the README's figures)
    python bench/serve_load.py --model DIR --n 16 --concurrency 4 --seed 0    # the small mode tests run
    python bench/serve_load.py --url http://127.0.0.1:8000 --pid PID --upload-dir DIR   # a running server
    python bench/serve_load.py --model DIR --n 48 --explain    # with the explanation images (explain=true)

Without --url it starts `dfdetect serve` itself (a free port of 127.0.0.1, a fresh --tmp-dir, a queue of 2 x C)
and stops it at the end. Each upload is one of a few short real talking clips (dfdetect.sample_media), drawn
with --seed. Prints requests/s, p50/p95 latency, the error count (503s are counted apart: the queue's own
refusals), the server's RSS at the start (after one warm-up request per clip) and the end, and whether its upload folder
is empty at the end. Exits 1 when any request failed, RSS grew over 10% or a file was left behind.
Bounded: at most --n requests, each with a 120 s timeout, and --max-seconds for the whole run; only
127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

RSS_GROWTH_MAX = 0.10


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_clips(folder: Path, seconds: float) -> list[Path]:
    """A few short real talking clips (three photographed faces, two voices)."""
    from dfdetect.sample_media import talking_clip

    return [talking_clip(folder / f"clip{i}.mp4", photo=photo, seconds=seconds, seed=i)
            for i, photo in enumerate(("astronaut", "grace_hopper", "astronaut"))]


def upload(host: str, port: int, data: bytes, token: str | None, explain: bool = False) -> tuple[int, float]:
    """One POST /v1/predict; returns the status (0: no answer) and the seconds it took."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
            f"Content-Type: video/mp4\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=120)
        conn.request("POST", "/v1/predict" + ("?explain=true" if explain else ""), body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        status = r.status
        conn.close()
    except OSError:
        status = 0
    return status, time.perf_counter() - t0


def run_load(url: str, n: int = 200, concurrency: int = 8, seed: int = 0, pid: int | None = None,
             upload_dir: str | Path | None = None, token: str | None = None, seconds: float = 2.0,
             max_seconds: float = 900.0, explain: bool = False) -> dict:
    """Sends ``n`` uploads at ``concurrency`` to the server at ``url`` (127.0.0.1 only) and measures them;
    ``pid`` and ``upload_dir`` are the server's, for its RSS and its leftovers."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing {url}: this bench only talks to a server on 127.0.0.1")
    host, port = "127.0.0.1", parts.port or 80
    with tempfile.TemporaryDirectory() as tmp:
        clips = [p.read_bytes() for p in make_clips(Path(tmp), seconds)]
    order = random.Random(seed).choices(range(len(clips)), k=n)
    # graph tracing, first-call costs and allocator pools are not the load's: RSS is taken after 3 requests
    # (the explanation path's memory settles after about 5 calls in-process, then stays flat)
    warm = [upload(host, port, clip, token, explain) for clip in clips][-1]
    rss0 = rss_mb(pid) if pid else None
    results: list[tuple[int, float]] = []
    deadline = time.monotonic() + max_seconds
    t0 = time.perf_counter()

    def one(i: int) -> tuple[int, float]:
        if time.monotonic() > deadline:
            return -1, 0.0  # not sent: the run's time bound
        return upload(host, port, clips[order[i]], token, explain)

    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    rss1 = rss_mb(pid) if pid else None
    lat = sorted(t for s, t in results if s == 200)
    empty = None
    if upload_dir is not None:  # the last files go once their requests end: give the scorer a moment
        end = time.monotonic() + 10
        while any(Path(upload_dir).iterdir()) and time.monotonic() < end:
            time.sleep(0.1)
        empty = not any(Path(upload_dir).iterdir())

    def q(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else float("nan")

    return {"n": n, "concurrency": concurrency, "seed": seed, "explain": explain, "warmup_status": warm[0],
            "ok": sum(s == 200 for s, _ in results), "busy": sum(s == 503 for s, _ in results),
            "errors": sum(s not in (200, 503) for s, _ in results),
            "not_sent": sum(s == -1 for s, _ in results), "seconds": round(wall, 2),
            "requests_per_s": round(n / wall, 2), "p50_s": q(0.50), "p95_s": q(0.95),
            "rss_start_mb": None if rss0 is None else round(rss0, 1),
            "rss_end_mb": None if rss1 is None else round(rss1, 1),
            "rss_growth": None if not rss0 else round(rss1 / rss0 - 1, 4), "upload_dir_empty": empty}


def problems(result: dict) -> list[str]:
    """What makes a run fail: errors, unsent requests, RSS growth over 10%, files left behind."""
    out = []
    if result["errors"] or result["not_sent"] or result["warmup_status"] != 200:
        out.append(f"{result['errors']} errors, {result['not_sent']} not sent, warm-up {result['warmup_status']}")
    if result["rss_growth"] is not None and result["rss_growth"] > RSS_GROWTH_MAX:
        out.append(f"RSS grew {result['rss_growth']:.1%} (> {RSS_GROWTH_MAX:.0%})")
    if result["upload_dir_empty"] is False:
        out.append("files left in the upload folder")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="exported model folder for the server this bench starts")
    ap.add_argument("--url", help="a running server on 127.0.0.1 instead (then --pid and --upload-dir)")
    ap.add_argument("--pid", type=int, help="the running server's process id (for its RSS)")
    ap.add_argument("--upload-dir", help="the running server's upload folder (to check it is left empty)")
    ap.add_argument("--token", default=os.environ.get("DFDETECT_TOKEN"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--max-seconds", type=float, default=900.0, help="bound on the whole run")
    ap.add_argument("--explain", action="store_true", help="ask for the explanation images too (explain=true)")
    args = ap.parse_args()

    proc = None
    tmp = tempfile.TemporaryDirectory()
    try:
        if args.url:
            url, pid, upload_dir = args.url, args.pid, args.upload_dir
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [sys.executable, "-m", "dfdetect.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--tmp-dir", tmp.name, "--queue", str(2 * args.concurrency)]
            cmd += ["--model", args.model] if args.model else []
            # the server's log goes to a file: a pipe nobody reads would fill up and block the server
            log = open(Path(tmp.name).parent / f"dfdetect-serve-load-{os.getpid()}.log", "w")
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True,
                                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            pid = proc.pid
            end = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"the server exited: {Path(log.name).read_text()[-2000:]}")
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/v1/health")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > end:
                    raise SystemExit("the server did not start within 300 s")
                time.sleep(0.5)
            print(f"server pid {pid}, log {log.name}", file=sys.stderr)
            folders = list(Path(tmp.name).iterdir())
            upload_dir = folders[0] if len(folders) == 1 else None
        load = os.getloadavg()
        result = run_load(url, args.n, args.concurrency, args.seed, pid, upload_dir, args.token,
                          args.clip_seconds, args.max_seconds, args.explain)
        result["loadavg_start"] = [round(x, 2) for x in load]
        result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        result["cpus"] = os.cpu_count()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        tmp.cleanup()
    print(json.dumps(result))
    print(f"{result['n']} uploads at concurrency {result['concurrency']}: {result['requests_per_s']} requests/s, "
          f"p50 {result['p50_s']} s, p95 {result['p95_s']} s, {result['errors']} errors, {result['busy']} busy "
          f"(503), RSS {result['rss_start_mb']} -> {result['rss_end_mb']} MB, upload folder empty: "
          f"{result['upload_dir_empty']}")
    bad = problems(result)
    for b in bad:
        print(f"FAIL: {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
