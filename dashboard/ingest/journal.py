"""A load journal beside the store file, so an interrupted load is explained, not guessed at.

DuckDB already makes a load atomic: if the process dies mid-transaction, the next open rolls
the unfinished transaction back. What it cannot do is *tell* anyone. Before a load's transaction
starts we write ``<store>.loading.json`` (file, sha256, pid, started); it is removed when the
transaction commits or rolls back. If it is still there when nobody is loading, the program
stopped during that load, and :func:`interrupted_load` says what happened.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dashboard.store import Store, utcnow


@dataclass(frozen=True)
class InterruptedLoad:
    file_name: str
    sha256: str
    started: str
    kept: bool  # True when the load had committed before the stop (it is in `loads`)
    message: str


def journal_path(store: Store) -> Path | None:
    if str(store.path) == ":memory:":
        return None
    return store.path.with_name(store.path.name + ".loading.json")


@contextmanager
def load_journal(store: Store, *, file_name: str, sha256: str) -> Iterator[None]:
    """Record the load in progress for the duration of its transaction."""
    path = journal_path(store)
    if path is None:
        yield
        return
    entry = {"file_name": file_name, "sha256": sha256, "pid": os.getpid(), "started": utcnow().isoformat(timespec="seconds")}
    # held for the whole load: another session's load waits, so it cannot remove this journal
    with store.write_lock:
        # written whole or not at all: a stop between creating the file and writing it must not
        # leave an empty journal behind
        scratch = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        scratch.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(scratch, path)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False  # unknown: os.kill(0 or -1, 0) would ask about a whole process group
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted_load(store: Store) -> InterruptedLoad | None:
    """The load that was cut off by a stop of the program, if any (None when nothing was)."""
    path = journal_path(store)
    if path is None or not path.exists():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entry = {"file_name": "an unknown file", "sha256": "", "pid": -1, "started": "an unknown time"}
    if _alive(int(entry.get("pid", -1))):
        return None  # a load is running right now
    rows = store.query("SELECT load_id FROM loads WHERE sha256 = ? AND status = 'loaded'", [entry.get("sha256", "")])
    name, started = entry.get("file_name", "a file"), entry.get("started", "an unknown time")
    if rows.height:
        message = (
            f"The program stopped just after loading {name} (started {started} UTC); the load had finished "
            f"and is kept as load #{rows['load_id'][0]}."
        )
        return InterruptedLoad(name, entry.get("sha256", ""), started, True, message)
    message = (
        f"The load of {name} (started {started} UTC) did not finish: the program stopped during it. "
        "Nothing from that file was kept; the store is exactly as it was before. Load the file again."
    )
    return InterruptedLoad(name, entry.get("sha256", ""), started, False, message)


def dismiss_interrupted_load(store: Store) -> None:
    """Forget the interrupted-load notice once the user has seen it."""
    path = journal_path(store)
    if path is not None and path.exists() and interrupted_load(store) is not None:
        path.unlink(missing_ok=True)
