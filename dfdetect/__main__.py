"""``python -m dfdetect ...``: the same as the ``dfdetect`` command (for an environment whose scripts folder
is not on PATH, or to pick the interpreter explicitly)."""

from dfdetect.cli import entry

if __name__ == "__main__":
    entry()
