"""atheris entry point: ``python tests/fuzz/fuzz_windows.py CORPUS_DIR [libFuzzer flags]``.

Coverage guidance sees the Python code of ``dfdetect.media`` and ``dfdetect.windows`` (instrumented below);
FFmpeg's C code is not instrumented, so the fuzzer is guided by the Python branches each input takes (error
paths, timestamp handling, audio gaps, rotation, the eager and lazy frame paths) and mutates blindly below.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["dfdetect.media", "dfdetect.windows"]):
    import dfdetect.media  # noqa: F401
    import dfdetect.windows  # noqa: F401

from target import check, check_memory  # noqa: E402


def test_one_input(data: bytes) -> None:
    check(data)
    check_memory()


def main() -> None:
    # libFuzzer: warm up (MediaPipe, TensorFlow Lite) before the clock of the first input starts
    check(b"")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
