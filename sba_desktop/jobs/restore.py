"""Undo a move to the trash: the files go back and the library takes them in again."""
from __future__ import annotations

from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.discover import is_under
from sba_desktop.library.library import Library
from sba_desktop.library.trash import Trashed, restore


def restore_and_reindex(lib: Library, items: list[Trashed], reindex: bool = True) -> list[Trashed]:
    """Undo Library.trash_photos: the files go back and (reindex) the library folders that hold
    them are indexed again, which takes them in (their vectors were forgotten). Returns what
    could not go back."""
    failed = restore(items)
    if reindex:
        IndexJob(lib, folders=[f for f in lib.catalog.folders()
                               if any(is_under(t.path, f) for t in items)]).run()
    return failed
