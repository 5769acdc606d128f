"""The README's command-line synopsis says what `--help` says: every command and every option of each, no more
(issue #16). A flag added to the parser without a README line, or a README line for a flag that is gone, fails
here with the difference."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dfdetect.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
# taken by every command (or every long-running one) and said once, above the synopsis
UNIVERSAL = {"--help", "--verbose", "--no-progress"}
FLAG = re.compile(r"--[a-z][a-z0-9_-]*")


def readme_synopsis() -> dict[str, set[str]]:
    """``{"predict": {"--model", ...}, "models fetch": {...}, "python predict.py": {...}}`` from the code
    block under "## Command line"."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Command line", 1)[1].split("```", 2)[1]
    out: dict[str, set[str]] = {}
    current = None
    for line in block.splitlines():
        code = line.split("#", 1)[0]
        if not code.strip():
            continue
        if not line.startswith(" "):
            words = code.split()
            if words[0] == "python":
                current = " ".join(words[:2])
            else:
                assert words[0] == "dfdetect", line
                rest = [w for w in words[1:] if re.fullmatch(r"[a-z]+", w)]
                current = " ".join(rest[:2]) if rest[:1] in (["models"], ["datasets"]) else \
                    (rest[0] if rest else "")
            out.setdefault(current, set())
        out[current] |= set(FLAG.findall(code))
    return out


def parser_options() -> dict[str, set[str]]:
    def walk(prefix: str, parser: argparse.ArgumentParser, out: dict[str, set[str]]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if prefix and not subs:
            out[prefix] = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
        for s in subs:
            for name, p in s.choices.items():
                walk(f"{prefix} {name}".strip(), p, out)

    out: dict[str, set[str]] = {}
    walk("", build_parser(), out)
    return out


def script_options(script: str) -> set[str]:
    res = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-1000:]
    usage = res.stdout.split("\n\n", 1)[0]  # the usage lines list every option
    return set(FLAG.findall(usage))


def test_every_command_is_in_the_synopsis_and_no_other():
    readme, parsed = readme_synopsis(), parser_options()
    commands = {k for k in readme if not k.startswith("python") and k}
    assert commands == set(parsed), (f"missing from the README: {sorted(set(parsed) - commands)}; "
                                     f"not commands: {sorted(commands - set(parsed))}")


@pytest.mark.parametrize("command", sorted(parser_options()))
def test_the_synopsis_lists_exactly_the_options_of(command):
    readme = readme_synopsis()[command]
    parsed = parser_options()[command] - UNIVERSAL
    assert readme - UNIVERSAL == parsed, (f"dfdetect {command}: not in the README: {sorted(parsed - readme)}; "
                                          f"in the README only: {sorted(readme - parsed)}")


@pytest.mark.parametrize("script", ["train.py", "predict.py"])
def test_the_top_level_scripts_match_their_help(script):
    readme = readme_synopsis()[f"python {script}"]
    parsed = script_options(script) - UNIVERSAL
    assert readme - UNIVERSAL == parsed, (f"python {script}: not in the README: {sorted(parsed - readme)}; "
                                          f"in the README only: {sorted(readme - parsed)}")
