"""This process's id, kept current across ``fork`` without a system call per use; locks a forked child gets anew.

Stores compare a connection's owner with the current process on every call
(a forked child must not use its parent's connections); ``os.getpid()`` is a
system call each time, while the id only changes at ``fork``.
"""

from __future__ import annotations

import _thread
import os
import threading
import weakref


class _Process:
    __slots__ = ("pid",)

    def __init__(self) -> None:
        self.pid = os.getpid()

    def _forked(self) -> None:
        self.pid = os.getpid()


#: ``current.pid`` is ``os.getpid()``, updated in a child right after ``fork``.
current = _Process()


class ForkLock:
    """A ``threading.Lock`` (``with lock:``, or ``acquire()`` and ``release()``) that a forked child gets unheld.

    Held at the fork by another thread, which the child does not have, the
    child's copy of a plain lock stays held for ever. Not for a block that
    forks while it holds the lock.
    """

    __slots__ = ("__weakref__", "_lock")

    def __init__(self) -> None:
        self._lock = self._new()
        _FORK_LOCKS.add(self)

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def _new(self) -> threading.Lock | _thread.RLock:
        """The lock itself: a new one in a forked child."""
        return threading.Lock()

    def _forked(self) -> None:
        self._lock = self._new()


class ForkRLock(ForkLock):
    """A ``threading.RLock`` that a forked child gets unheld, unless the thread that forked held it.

    The child runs on as the thread that called ``fork``; a block of that
    thread's which held the lock then leaves it in the child as it would have
    in the parent. One another thread held is let go, as :class:`ForkLock`'s.
    """

    __slots__ = ()

    def _new(self) -> threading.Lock | _thread.RLock:
        return threading.RLock()

    def _forked(self) -> None:
        # The RLock's owner is a thread id, and the child's one thread keeps the id of the one that forked.
        if not self._lock._is_owned():  # type: ignore[union-attr]
            super()._forked()


_FORK_LOCKS: weakref.WeakSet[ForkLock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    current._forked()
    for lock in list(_FORK_LOCKS):
        lock._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["ForkLock", "ForkRLock", "current"]
