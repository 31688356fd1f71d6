"""Run a command and report its peak resident set size (RSS): the kernel's own high-water mark.

Usage: python bench/peak_rss.py COMMAND [ARG...]
The last line on stderr is ``peak_rss_kib N``; the exit status is the command's.

Why a wrapper: ``os.wait4`` gives one child's ``ru_maxrss``, but on Linux a child's high-water
mark starts at its parent's RSS at fork time (the kernel carries it across fork and exec), so a
benchmark that holds arrays or has torch imported would inflate every child it measures. This
process is a bare Python interpreter, so the floor it adds is a few MiB (``python -c pass`` is
about 9 MiB here), far below the 1 GiB target. ``resource.RUSAGE_CHILDREN`` is no help either:
it is the maximum over all reaped children, not per process.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        except OSError as exc:
            print(f"peak_rss: {sys.argv[1]}: {exc.strerror}", file=sys.stderr)
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    print(f"peak_rss_kib {kib}", file=sys.stderr)
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)  # killed by signal S: 128 + S, as shells say


if __name__ == "__main__":
    main()
