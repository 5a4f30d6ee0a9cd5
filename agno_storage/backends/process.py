"""This process's id, kept current across ``fork`` without a system call per use.

Stores compare a connection's owner with the current process on every call
(a forked child must not use its parent's connections); ``os.getpid()`` is a
system call each time, while the id only changes at ``fork``.
"""

from __future__ import annotations

import os


class _Process:
    __slots__ = ("pid",)

    def __init__(self) -> None:
        self.pid = os.getpid()

    def _forked(self) -> None:
        self.pid = os.getpid()


#: ``current.pid`` is ``os.getpid()``, updated in a child right after ``fork``.
current = _Process()
os.register_at_fork(after_in_child=current._forked)

__all__ = ["current"]
