"""The one exception family that means "the user can fix this".

``dfdetect`` tells apart three kinds of trouble, and the command line gives each its own exit code:

* a bad input among many (an unreadable video): ``dfdetect.media.MediaError``, reported per input, exit 3;
* a mistake the user can fix (a bad flag value, a missing folder, a bad config, a bad model card, a dataset
  layout error in strict mode): a ``UsageError``, exit 2 with its one-line message;
* anything else is a bug: exit 1, with the traceback in the command's log file.

Subclasses also derive from the built-in type they used to be (``ValueError``...), so callers that caught that
keep working.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad arguments, settings or a missing prerequisite the user can fix; the CLI exits 2."""
