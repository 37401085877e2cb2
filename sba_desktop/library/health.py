"""A library's health: the catalog checked when it opens, salvaged when damaged, and what only
the user made kept beside it.

What the user made (folders, categories, their labels and accepted tags, settings) is small and
cannot be rebuilt from the photos; everything else (vectors, the index, the model) can. So after
every change of it a copy is written beside the catalog (`user-data.sqlite`, the last
BACKUPS_KEPT kept), and a damaged catalog is set aside untouched (`catalog.damaged-<time>.sqlite`),
a new one is made from what SQLite can still read of it, and the backup fills in what it could
not: nothing the user made is lost, the photos are re-encoded by the next `sba index`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from pathlib import Path

from sba_desktop.files import replace_file
from sba_desktop.library.catalog import Catalog
from sba_desktop.paths import AppPaths

log = logging.getLogger(__name__)

BACKUP_NAME = "user-data.sqlite"
BACKUPS_KEPT = 3
# the catalog is read through by SQLite's quick_check when it opens, up to this size (about 25,000
# photos; a larger one is checked by `sba status` and whenever a query finds it damaged)
CHECK_AT_OPEN_BYTES = 256 * 1024 * 1024
# tables copied from a damaged catalog, in an order their references allow (staged vectors of a
# refit and the duplicate finder's comparisons are caches: they are made again)
SALVAGED = ("folders", "models", "meta", "photos", "categories", "labels")
_DAMAGE_WORDS = ("malformed", "not a database", "corrupt", "disk image", "no such table", "file is encrypted")

_BACKUP_SCHEMA = """
CREATE TABLE folders (path BLOB PRIMARY KEY);
CREATE TABLE categories (name TEXT PRIMARY KEY, root BLOB);
CREATE TABLE labels (path BLOB, category TEXT, source TEXT, confidence REAL, accepted INTEGER,
                     abstained INTEGER, updated REAL, PRIMARY KEY (path, source));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE about (key TEXT PRIMARY KEY, value TEXT);
"""


def is_damage(exc: BaseException) -> bool:
    """Whether an SQLite error says the file itself is damaged (not locked, full or read-only)."""
    return isinstance(exc, sqlite3.DatabaseError) and any(w in str(exc).lower() for w in _DAMAGE_WORDS)


def check(db: sqlite3.Connection, full: bool = False) -> str | None:
    """None when SQLite finds the catalog sound, else its first complaint."""
    try:
        rows = db.execute("PRAGMA integrity_check(5)" if full else "PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    found = [" ".join(str(r[0]).replace("*** in database main ***", "").split()) for r in rows]
    found = [f for f in found if f]
    if found == ["ok"]:
        return None
    text = "; ".join(found)
    return text if len(text) <= 100 else text[:97] + "..."


def open_catalog(paths: AppPaths, read_only: bool) -> tuple[Catalog, list[str]]:
    """The library's catalog, checked (and salvaged when damaged, unless read-only); with one
    line per repair."""
    path = paths.catalog_file
    try:
        try:
            catalog = Catalog(path, read_only=read_only)
        except sqlite3.OperationalError as exc:
            # a full disk refuses even the WAL's index file: the library still answers, read-only
            if read_only or not path.exists() or is_damage(exc):
                raise
            log.warning("catalog opened read-only: %s", exc)
            catalog, read_only = Catalog(path, read_only=True), True
        trouble = _probe(catalog, full=False) if path.exists() else None
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        catalog, trouble = None, str(exc)
    if trouble is None:
        return catalog, []
    trouble = " ".join(trouble.split())
    trouble = trouble if len(trouble) <= 100 else trouble[:97] + "..."
    if catalog is not None:
        catalog.close()
    if read_only:
        raise RuntimeError(f"the library's catalog {path} is damaged ({trouble}) and the library is read-only: "
                           "open it once where it can be written to repair it")
    return salvage(paths, trouble)


def _probe(catalog: Catalog, full: bool) -> str | None:
    """What is wrong with an open catalog: SQLite's check when it is small enough (or `full`),
    and a read of each table the user's data lives in."""
    try:
        if full or catalog.path.stat().st_size <= CHECK_AT_OPEN_BYTES:
            trouble = check(catalog.db, full)
            if trouble:
                return trouble
        for table in SALVAGED:
            catalog.db.execute(f"SELECT count(*) FROM {table}").fetchone()
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            return str(exc)
        raise
    return None


def health_check(catalog: Catalog) -> str | None:
    """SQLite's full integrity check of an open catalog (sba status): None when sound."""
    return _probe(catalog, full=True)


# ---------------------------------------------------------------------- salvage
def salvage(paths: AppPaths, trouble: str) -> tuple[Catalog, list[str]]:
    """Set the damaged catalog aside, make a new one from what can be read of it and from the
    backup of the user's data; (the new catalog, the line saying what was done)."""
    path = paths.catalog_file
    aside = path.with_name(f"catalog.damaged-{time.strftime('%Y%m%d-%H%M%S')}.sqlite")
    for suffix in ("", "-wal", "-shm"):  # SQLite finds a WAL by the file's name: they move together
        if os.path.exists(f"{path}{suffix}"):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    catalog = Catalog(path)
    copied = _copy_readable(aside, catalog)
    backup = read_backup(paths.data)
    restored = _restore(catalog, backup) if backup else {}
    save_backup(catalog, paths.data)
    when = backup["about"].get("written", "?") if backup else ""
    back = ", ".join(f"{n} {k}" for k, n in restored.items() if n)
    kept = (f"; restored from the backup of {when}: {back}" if back else f"; the backup of {when} held nothing more"
            ) if backup else "; no backup of your data was found"
    line = (f"the catalog was damaged ({trouble}): set aside as {aside.name}, and a new one made from what could be "
            f"read ({copied.get('photos', 0)} photos, {copied.get('labels', 0)} labels, {copied.get('categories', 0)} "
            f"categories){kept}; photos without a vector are encoded again by the next 'sba index'")
    log.warning(line)
    return catalog, [line]


def _copy_readable(damaged: Path, catalog: Catalog) -> dict[str, int]:
    """Rows SQLite can still read from the damaged file, table by table, skipping past pages
    that fail; {table: rows copied}."""
    counts: dict[str, int] = {}
    try:
        old = sqlite3.connect(f"{damaged.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.DatabaseError:
        return counts
    try:
        for table in SALVAGED:
            try:
                have = [r[1] for r in old.execute(f"PRAGMA table_info({table})")]
            except sqlite3.DatabaseError:
                continue
            want = [r[1] for r in catalog.db.execute(f"PRAGMA table_info({table})")]
            cols = [c for c in want if c in have]
            if cols:
                counts[table] = _copy_table(old, catalog.db, table, cols)
    finally:
        old.close()
    return counts


def _copy_table(old: sqlite3.Connection, new: sqlite3.Connection, table: str, cols: list[str]) -> int:
    names = ", ".join(cols)
    insert = f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})"
    try:
        top = old.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = 1 << 40
    after, copied, misses = -(1 << 62), 0, 0
    while misses < 64:
        try:
            rows = old.execute(f"SELECT rowid, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 256",
                               (after,)).fetchall()
        except sqlite3.DatabaseError:
            misses += 1  # a damaged page: step over it, further each time
            after = max(after, 0) + (1 << misses) if after < top else top
            continue
        if not rows:
            break
        for r in rows:
            try:
                new.execute(insert, r[1:])
                copied += 1
            except sqlite3.DatabaseError:  # a row whose references were lost (a label of a lost photo)
                pass
        after = rows[-1][0]
    return copied


# ---------------------------------------------------------------------- the user's data
def _user_rows(catalog: Catalog) -> dict[str, list[tuple]]:
    db = catalog.db
    return {
        "folders": db.execute("SELECT path FROM folders ORDER BY path").fetchall(),
        "categories": db.execute("SELECT name, root FROM categories ORDER BY name").fetchall(),
        # what the user decided: folder examples, their own tags, accepted proposals
        "labels": db.execute(
            "SELECT p.path, c.name, l.source, l.confidence, l.accepted, l.abstained, l.updated FROM labels l "
            "JOIN photos p ON p.id = l.photo_id JOIN categories c ON c.id = l.category_id "
            "WHERE l.accepted = 1 OR l.source IN ('folder', 'user') ORDER BY p.path, l.source").fetchall(),
        "meta": db.execute("SELECT key, value FROM meta WHERE key NOT LIKE 'library_at_fit.%' "
                           "AND key NOT IN ('active_model', 'staged_model') ORDER BY key").fetchall(),
    }


def _digest(rows: dict[str, list[tuple]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for table in sorted(rows):
        h.update(table.encode())
        h.update(repr(rows[table]).encode())
    return h.hexdigest()


def backup_files(data: Path) -> list[Path]:
    """The backups of the user's data, newest first."""
    first = data / BACKUP_NAME
    return [first] + [first.with_name(f"user-data.{i}.sqlite") for i in range(1, BACKUPS_KEPT)]


def save_backup(catalog: Catalog, data: Path) -> bool:
    """Write the user's data beside the catalog when it changed since the last backup (the
    older ones move down, BACKUPS_KEPT kept); True when written."""
    rows = _user_rows(catalog)
    digest = _digest(rows)
    files = backup_files(Path(data))
    current = _read(files[0])
    if current is not None and current["about"].get("digest") == digest:
        return False

    def fill(tmp: str) -> None:
        db = sqlite3.connect(tmp)
        try:
            db.executescript(_BACKUP_SCHEMA)
            db.executemany("INSERT INTO folders VALUES (?)", rows["folders"])
            db.executemany("INSERT INTO categories VALUES (?, ?)", rows["categories"])
            db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?)", rows["labels"])
            db.executemany("INSERT INTO meta VALUES (?, ?)", rows["meta"])
            db.executemany("INSERT INTO about VALUES (?, ?)",
                           [("digest", digest), ("written", time.strftime("%Y-%m-%d %H:%M:%S"))])
            db.commit()
        finally:
            db.close()
    if current is not None:  # rotate: the oldest goes, the others move down one
        for older, newer in zip(reversed(files[1:]), reversed(files[:-1])):
            if newer.exists():
                os.replace(newer, older)
    replace_file(files[0], fill, "the backup of your categories and tags")
    return True


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            out = {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in ("folders", "categories", "labels", "meta")}
            out["about"] = dict(db.execute("SELECT key, value FROM about").fetchall())
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None
    return out


def read_backup(data: Path) -> dict | None:
    """The newest readable backup of the user's data, or None."""
    for path in backup_files(Path(data)):
        found = _read(path)
        if found is not None:
            return found
    return None


def _restore(catalog: Catalog, backup: dict) -> dict[str, int]:
    """Put back what the backup holds and the salvaged catalog lacks; {kind: rows restored}.
    A label's photo that was lost comes back as a pending photo (encoded by the next index)."""
    db = catalog.db
    done = {"folders": 0, "categories": 0, "tags": 0, "settings": 0}
    now = time.time()
    with catalog.transaction():
        for (path,) in backup["folders"]:
            done["folders"] += db.execute("INSERT OR IGNORE INTO folders(path, added) VALUES (?, ?)",
                                          (path, now)).rowcount
        for name, root in backup["categories"]:
            done["categories"] += db.execute("INSERT OR IGNORE INTO categories(name, root) VALUES (?, ?)",
                                             (name, root)).rowcount
        for path, category, source, confidence, accepted, abstained, updated in backup["labels"]:
            db.execute("INSERT OR IGNORE INTO photos(path, size, mtime_ns, state, updated) "
                       "VALUES (?, -1, -1, 'pending', ?)", (path, now))
            pid = db.execute("SELECT id FROM photos WHERE path=?", (path,)).fetchone()[0]
            db.execute("INSERT OR IGNORE INTO categories(name) VALUES (?)", (category,))
            cid = db.execute("SELECT id FROM categories WHERE name=?", (category,)).fetchone()[0]
            done["tags"] += db.execute(
                "INSERT OR IGNORE INTO labels(photo_id, category_id, source, confidence, accepted, updated, abstained) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (pid, cid, source, confidence, accepted, updated, abstained)).rowcount
        for key, value in backup["meta"]:
            done["settings"] += db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                                           (key, value)).rowcount
    return done

