"""The catalog's tables, and the steps that bring an older catalog up to date (one per version)."""
from __future__ import annotations

import sqlite3
from typing import Iterator

SCHEMA_VERSION = 5

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE folders (
        id INTEGER PRIMARY KEY,
        path BLOB NOT NULL UNIQUE,
        added REAL NOT NULL
    );
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        path BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        fingerprint TEXT,
        width INTEGER,
        height INTEGER,
        state TEXT NOT NULL DEFAULT 'pending',   -- pending | indexed | skipped
        reason TEXT,
        model_id TEXT,
        vector BLOB,
        updated REAL NOT NULL
    );
    CREATE INDEX photos_state ON photos(state);
    CREATE INDEX photos_fingerprint ON photos(fingerprint);
    CREATE TABLE models (
        id TEXT PRIMARY KEY,
        file TEXT NOT NULL,
        description TEXT NOT NULL,
        dims INTEGER NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE categories (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        root BLOB
    );
    CREATE TABLE labels (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        category_id INTEGER NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
        source TEXT NOT NULL,          -- folder | auto | user
        confidence REAL,
        accepted INTEGER NOT NULL DEFAULT 0,
        updated REAL NOT NULL,
        PRIMARY KEY (photo_id, source)
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    """,
    # an auto label can be "none of these": category_id then holds the closest category
    # peaks: where each detector of the photo's model fires most (float16 N x 3), for galleries
    2: """
    ALTER TABLE labels ADD COLUMN abstained INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE photos ADD COLUMN peaks BLOB;
    """,
    # a refit in the background: the next model's vectors wait here while the active model serves
    # searches; one transaction moves them into photos when every photo has one
    3: """
    CREATE TABLE staged (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        vector BLOB NOT NULL,
        peaks BLOB,
        width INTEGER,
        height INTEGER
    );
    """,
    # what the duplicate finder needs besides the vector (library/duplicates.py): the photo's
    # small grey picture (engine/copies.py), its EXIF capture time and camera, its format.
    # Independent of the model: a refit keeps them; a changed file clears them.
    4: """
    ALTER TABLE photos ADD COLUMN signature BLOB;
    ALTER TABLE photos ADD COLUMN signature_width INTEGER;
    ALTER TABLE photos ADD COLUMN taken REAL;
    ALTER TABLE photos ADD COLUMN camera TEXT;
    ALTER TABLE photos ADD COLUMN format TEXT;
    CREATE TABLE compared (
        a INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        b INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        agreement REAL NOT NULL,
        PRIMARY KEY (a, b)
    );
    CREATE INDEX compared_b ON compared(b);
    """,
    # looking inside photos (library/inside.py): each photo's kept windows of one model (a cache:
    # made again from the photos); `windows_version` counts every change of them, cascades included,
    # so a search knows when its copy in memory is out of date (in this process or another)
    5: """
    CREATE TABLE windows (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        vectors BLOB NOT NULL,
        scales BLOB NOT NULL,
        boxes BLOB NOT NULL
    );
    CREATE TABLE windows_version (n INTEGER NOT NULL);
    INSERT INTO windows_version(n) VALUES (0);
    CREATE TRIGGER windows_added AFTER INSERT ON windows BEGIN UPDATE windows_version SET n = n + 1; END;
    CREATE TRIGGER windows_removed AFTER DELETE ON windows BEGIN UPDATE windows_version SET n = n + 1; END;
    CREATE TRIGGER windows_changed AFTER UPDATE ON windows BEGIN UPDATE windows_version SET n = n + 1; END;
    """,
}


def statements(script: str) -> Iterator[str]:
    """The SQL statements of a script, one by one (a trigger's body holds semicolons of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
