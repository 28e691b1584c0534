"""Resident memory of a process tree, for the benchmarks that run their work as subprocesses."""

from __future__ import annotations

from collections.abc import Iterable

import psutil


def tree_rss(process: psutil.Process, extra_pids: Iterable[int] = ()) -> int:
    """Bytes resident in ``process``, its descendants and ``extra_pids`` (each process counted once)."""
    try:
        members = {process.pid: process, **{c.pid: c for c in process.children(recursive=True)}}
    except psutil.NoSuchProcess:
        members = {}
    for pid in extra_pids:
        if pid not in members:
            try:
                members[pid] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
    total = 0
    for member in members.values():
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total
