"""The database's schema, versioned with `PRAGMA user_version`: migration N takes a database at
version N - 1 to version N, in one transaction. A new version is a new entry at the end of
MIGRATIONS; an old entry is never edited (databases out there went through it).

Why the standard library and not SQLAlchemy + Alembic: a handful of tables written by one
process, read by the same process; SQL this small reads better than a mapping of it, and
`user_version` steps are all the migration machinery it needs.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: runs, their history, checkpoints and the datasets they train on
    """
    CREATE TABLE datasets (
        id TEXT PRIMARY KEY,            -- from the words' sha256: the same list is one dataset
        name TEXT NOT NULL,
        text BLOB NOT NULL,             -- the words, one per line, zlib-compressed UTF-8
        words INTEGER NOT NULL,
        vocab_size INTEGER NOT NULL,
        train_examples INTEGER NOT NULL,
        dev_examples INTEGER NOT NULL,
        test_examples INTEGER NOT NULL,
        bytes INTEGER NOT NULL,         -- the text's size uncompressed
        created_at REAL NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,             -- RunSpec as JSON: what the run is and started with
        dataset_id TEXT NOT NULL REFERENCES datasets(id),
        status TEXT NOT NULL,
        detail TEXT NOT NULL,
        step INTEGER NOT NULL,
        hparams TEXT NOT NULL,          -- the current lr, batch_size, eval_every, schedule (JSON)
        max_steps INTEGER NOT NULL,
        train_seconds REAL NOT NULL,
        last_eval TEXT,                 -- JSON {step, train_loss, dev_loss, b_noise}
        test TEXT,                      -- JSON: the last test-split evaluation
        parent_id TEXT,
        parent_step INTEGER,
        sweep_id TEXT,
        history BLOB,                   -- the bucketed loss history, when it was last saved
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX runs_by_created ON runs(created_at);
    CREATE INDEX runs_by_dataset ON runs(dataset_id);
    -- every step's loss, rate and batch size, in chunks of consecutive steps
    CREATE TABLE steps (
        run_id TEXT NOT NULL,
        first INTEGER NOT NULL,
        n INTEGER NOT NULL,
        batch_size INTEGER NOT NULL,
        time_end REAL NOT NULL,         -- seconds of training at the end of the chunk's last step
        loss BLOB NOT NULL,             -- n float32, little-endian
        lr BLOB,                        -- n float32, or NULL when every step used lr_const
        lr_const REAL,
        PRIMARY KEY (run_id, first)
    ) WITHOUT ROWID;
    CREATE TABLE evals (
        run_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        train_loss REAL,
        dev_loss REAL,
        b_noise REAL,
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID;
    -- the intervention timeline: the hyperparameters in effect from each step on
    CREATE TABLE changes (
        run_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        change TEXT NOT NULL,           -- JSON {step, lr, batch_size, eval_every, schedule, max_steps}
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE lrfinds (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        result TEXT NOT NULL,           -- JSON: the sweep's points and suggestion
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        run_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        file TEXT NOT NULL,             -- relative to the home directory
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        train_loss REAL,
        dev_loss REAL,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID;
    """,
    # 2: sweeps: a grid of runs started together (runs.sweep_id names theirs)
    """
    CREATE TABLE sweeps (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,             -- the request: base settings, grid or lr_range (JSON)
        swept TEXT NOT NULL,            -- the names of the parameters swept (JSON list)
        stopped INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX runs_by_sweep ON runs(sweep_id);
    """,
    # 3: why a run has its status, as data (runs.detail says it to people)
    """
    ALTER TABLE runs ADD COLUMN cause TEXT;         -- a protocol.Cause, or NULL
    ALTER TABLE runs ADD COLUMN divergence TEXT;    -- JSON protocol.Divergence, with cause 'diverged'
    """,
    # 4: inside the network (issue 23): diagnostic points and gradient-direction passes
    """
    CREATE TABLE diagnostics (
        run_id TEXT NOT NULL,
        step INTEGER NOT NULL,          -- the step the point was taken around
        scalars BLOB NOT NULL,          -- float32 in store/diagnostics.py SCALARS' order, NaN: none
        point BLOB,                     -- the point as sent, zlib JSON: the latest 200 points' only
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID;
    CREATE TABLE gradcos (
        run_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        result TEXT NOT NULL,           -- JSON: batch sizes, cosines' mean, std, min, max, ...
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID;
    """,
]

VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    pass


def migrate(conn: sqlite3.Connection, migrations: list[str] | None = None) -> int:
    """Bring the database to the latest version; returns the version it was at."""
    steps = MIGRATIONS if migrations is None else migrations
    (found,) = conn.execute("PRAGMA user_version").fetchone()
    if found > len(steps):
        raise SchemaError(f"the database is at version {found}, newer than this program's {len(steps)}")
    for version in range(found + 1, len(steps) + 1):
        with conn:  # one transaction per step: a failed step leaves the previous version
            conn.execute("BEGIN")
            for statement in _statements(steps[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    return int(found)


def _statements(script: str) -> list[str]:
    """executescript() would COMMIT first; split it so the step stays one transaction. (Comments
    are dropped first: a ';' in one would not end a statement.)"""
    text = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    out, buf = [], ""
    for piece in text.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    return out
