"""Peak RSS of one measurement in its own process: reset the kernel's high-water mark, read it back.

On Linux ``ru_maxrss`` survives exec (a child started from a large parent
reports the parent's peak), so the high-water mark is reset through
/proc/self/clear_refs and read back as VmHWM; elsewhere ``ru_maxrss``.
Standard library only: the agno 3 child (bench/agno3.py) runs this file's
text under agno 3.1.10's own interpreter.
"""

from __future__ import annotations

import resource


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def start_window() -> int:
    """Start a fresh peak-RSS window; the RSS now, in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_kib() -> int:
    """Peak RSS in KiB since :func:`start_window` (since the process began without /proc)."""
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
