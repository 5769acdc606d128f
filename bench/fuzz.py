"""A long fuzzing campaign of the path from bytes to windows (issue #17).

    python bench/fuzz.py --seconds 1800 [--out bench/results/fuzz] [--seed 1] [--time-limit 20]

Seeds a corpus with the small valid clips of ``tests/fuzz/seeds.py`` and runs the atheris target
``tests/fuzz/fuzz_windows.py`` (libFuzzer) for ``--seconds``. An input that breaks the invariant (an
exception other than ``MediaError``, a reason that is empty or spans lines, more than ``--time-limit`` seconds,
peak RSS over libFuzzer's 2048 MB, or a crash of the interpreter) stops libFuzzer, which writes it out; this
script keeps it under ``OUT/findings/``, prints its one-line finding and starts the fuzzer again on the same
corpus with the time left, so one bad input does not end the campaign. Copy a finding into
``tests/fuzz/regressions/`` once it is fixed: CI replays every file there.

Prints, and writes to ``OUT/summary.json``: inputs tried, coverage (libFuzzer's ``cov``: Python branches of
``dfdetect.media`` and ``dfdetect.windows``; FFmpeg's C code is not instrumented), features, corpus size,
executions per second, findings. Run it under ``nice`` on a shared machine.

    python bench/fuzz.py --coverage-of OUT/corpus   # line coverage of media.py and windows.py by a corpus
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "fuzz"
STATS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")


def run(seconds: float, out: Path, seed: int, time_limit: float, max_len: int = 65536) -> dict:
    sys.path.insert(0, str(FUZZ))
    from seeds import make_seeds

    corpus, findings = out / "corpus", out / "findings"
    findings.mkdir(parents=True, exist_ok=True)
    if not corpus.exists() or not any(corpus.iterdir()):
        make_seeds(corpus)
    totals = {"inputs": 0, "cov": 0, "ft": 0, "corpus": 0, "restarts": 0, "findings": []}
    t_end = time.monotonic() + seconds
    attempt = 0
    while (left := t_end - time.monotonic()) > 5:
        artifacts = out / f"artifacts{attempt}"
        artifacts.mkdir(exist_ok=True)
        cmd = [sys.executable, str(FUZZ / "fuzz_windows.py"), str(corpus), f"-seed={seed + attempt}",
               f"-max_total_time={int(left)}", f"-max_len={max_len}", f"-timeout={int(time_limit) + 30}",
               "-rss_limit_mb=0",  # libFuzzer's ru_maxrss starts at the parent's peak: tests/fuzz/target.py checks
               f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
        env = {**os.environ, "DFDETECT_FUZZ_TIME_LIMIT": str(time_limit), "TF_CPP_MIN_LOG_LEVEL": "2",
               "GLOG_minloglevel": "2"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        log = proc.stderr + proc.stdout
        (out / f"log{attempt}.txt").write_text(log)
        matches = STATS.findall(log)
        if matches:
            n, cov, ft, corp = (int(x) for x in matches[-1])
            totals["inputs"] += n
            totals["cov"], totals["ft"], totals["corpus"] = max(totals["cov"], cov), max(totals["ft"], ft), corp
        execs = re.search(r"stat::number_of_executed_units: (\d+)", log)
        if execs and not matches:
            totals["inputs"] += int(execs.group(1))
        for f in sorted(artifacts.iterdir()):
            dest = findings / f.name
            shutil.move(str(f), dest)
            why = re.findall(r"(Finding: .*|Segmentation fault|==\d+== ERROR: libFuzzer: .*|out-of-memory.*)", log)
            totals["findings"].append({"file": str(dest), "what": why[-1] if why else f"exit {proc.returncode}"})
            print(f"finding: {dest}: {totals['findings'][-1]['what']}", flush=True)
        shutil.rmtree(artifacts, ignore_errors=True)
        if proc.returncode == 0:
            break
        totals["restarts"] += 1
        attempt += 1
    totals["seconds"] = round(seconds - max(0.0, t_end - time.monotonic()), 1)
    totals["inputs_per_s"] = round(totals["inputs"] / max(1.0, totals["seconds"]), 1)
    (out / "summary.json").write_text(json.dumps(totals, indent=2))
    return totals


# not on the path from bytes to windows: encoding (tests and benchmarks), the CLI's probe, read_all (tests)
_OFF_PATH = {"write_video", "probe", "read_all", "to_dict", "to_json"}


def _executable_lines(path: Path) -> set[int]:
    """Lines in the bodies of functions (module and class bodies run at import, before tracing starts),
    except those of ``_OFF_PATH`` functions and what they nest."""
    code = compile(path.read_text(), str(path), "exec")
    lines, todo = set(), [code]
    while todo:
        c = todo.pop()
        if c.co_name in _OFF_PATH:
            continue
        if c.co_flags & 0x1:  # CO_OPTIMIZED: a function's body
            lines.update(ln for _, _, ln in c.co_lines() if ln is not None and ln > c.co_firstlineno)
        todo.extend(k for k in c.co_consts if hasattr(k, "co_lines"))
    return lines


def line_coverage(corpus: Path) -> dict[str, str]:
    """Replays a corpus through the target with a line tracer: the share of the function lines of
    ``dfdetect/media.py`` and ``dfdetect/windows.py`` on the path from bytes to windows that some input ran (a
    readable figure beside libFuzzer's ``cov``)."""
    import threading

    sys.path.insert(0, str(FUZZ))
    from target import Finding, check

    files = {str(ROOT / "dfdetect" / n): set() for n in ("media.py", "windows.py")}

    def tracer(frame, event, arg):
        hit = files.get(frame.f_code.co_filename)
        if hit is None:
            return None
        if event == "line":
            hit.add(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    threading.settrace(tracer)  # Prefetch decodes in a thread
    try:
        for f in sorted(corpus.iterdir()):
            try:
                check(f.read_bytes())
            except Finding:
                pass
    finally:
        sys.settrace(None)
        threading.settrace(None)
    out = {}
    for name, hit in files.items():
        lines = _executable_lines(Path(name))
        out[Path(name).name] = f"{len(hit & lines)}/{len(lines)} lines ({100 * len(hit & lines) / len(lines):.0f}%)"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds allowed per input")
    ap.add_argument("--coverage-of", type=Path, help="only replay this corpus and print its line coverage")
    args = ap.parse_args()
    if args.coverage_of:
        print(json.dumps(line_coverage(args.coverage_of)))
        return
    totals = run(args.seconds, args.out, args.seed, args.time_limit)
    print(json.dumps({k: v for k, v in totals.items() if k != "findings"}))
    print(f"{len(totals['findings'])} finding(s)" + "".join(f"\n  {f['file']}: {f['what']}"
                                                             for f in totals["findings"]))


if __name__ == "__main__":
    main()
