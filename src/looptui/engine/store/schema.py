"""The store's schema, as numbered migrations applied in order and recorded in user_version.

Later versions append to MIGRATIONS; a released migration is never edited.
"""

from __future__ import annotations

# Events that carry text worth searching; the FTS index skips the rest (notes have an index
# of their own, so note events are not in it). Schema 1 indexed the first six, as raw JSON.
SEARCHABLE_KINDS = (
    "output",
    "text",
    "error",
    "tool_call",
    "tool_result",
    "agent_finished",
    "verdict",
    "check",
    "hook",
    "status",  # a run's end, with its error: why it failed, stalled or was stopped
)
_V1_SEARCHABLE = SEARCHABLE_KINDS[:6]

_V1 = f"""
CREATE TABLE loops (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,          -- the loop's config as JSON, as it was when last run
    updated_at  REAL NOT NULL
);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    loop            TEXT NOT NULL,
    agent           TEXT NOT NULL,
    status          TEXT NOT NULL,
    prompt          TEXT NOT NULL,
    base_branch     TEXT NOT NULL,
    base_commit     TEXT NOT NULL,
    branch          TEXT NOT NULL,
    worktree        TEXT NOT NULL,
    max_iterations  INTEGER NOT NULL,
    iterations      INTEGER NOT NULL DEFAULT 0,
    head_commit     TEXT,
    error           TEXT,
    created_at      REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    owner_pid       INTEGER,            -- the process driving the run, to detect crashes
    owner_host      TEXT,
    resume_token    TEXT,               -- the agent's session id, to continue after a restart
    diff_files      INTEGER NOT NULL DEFAULT 0,
    diff_added      INTEGER NOT NULL DEFAULT 0,
    diff_removed    INTEGER NOT NULL DEFAULT 0,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_status ON runs (status);
CREATE INDEX runs_by_loop ON runs (loop, created_at);

CREATE TABLE iterations (
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    finished_at     REAL,
    prompt          TEXT NOT NULL,
    agent_ok        INTEGER,
    agent_message   TEXT NOT NULL DEFAULT '',
    exit_code       INTEGER,
    commit_sha      TEXT,
    tree            TEXT,               -- the worktree's tree after the turn: stall detection
    diff_files      INTEGER NOT NULL DEFAULT 0,
    diff_added      INTEGER NOT NULL DEFAULT 0,
    diff_removed    INTEGER NOT NULL DEFAULT 0,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL NOT NULL DEFAULT 0,
    resume_token    TEXT,
    PRIMARY KEY (run_id, number)
) WITHOUT ROWID;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    iteration   INTEGER NOT NULL,
    ts          REAL NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL           -- JSON
);
CREATE INDEX events_by_run ON events (run_id, id);

CREATE VIRTUAL TABLE events_fts USING fts5 (data, content='events', content_rowid='id');
CREATE TRIGGER events_fts_insert AFTER INSERT ON events
WHEN new.kind IN ({", ".join(f"'{kind}'" for kind in _V1_SEARCHABLE)})
BEGIN
    INSERT INTO events_fts (rowid, data) VALUES (new.id, new.data);
END;

CREATE TABLE check_results (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    iteration   INTEGER NOT NULL,
    name        TEXT NOT NULL,
    command     TEXT NOT NULL,
    exit_code   INTEGER,
    timed_out   INTEGER NOT NULL DEFAULT 0,
    duration    REAL NOT NULL,
    output      TEXT NOT NULL
);
CREATE INDEX check_results_by_run ON check_results (run_id, iteration);

CREATE TABLE verdicts (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    iteration   INTEGER NOT NULL,
    done        INTEGER NOT NULL,
    evaluator   TEXT NOT NULL,
    confidence  REAL NOT NULL,
    reasons     TEXT NOT NULL,          -- JSON list
    next_steps  TEXT NOT NULL,          -- JSON list
    created_at  REAL NOT NULL
);
CREATE INDEX verdicts_by_run ON verdicts (run_id, iteration);

CREATE TABLE notes (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    iteration   INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX notes_by_run ON notes (run_id, id);
CREATE VIRTUAL TABLE notes_fts USING fts5 (text, content='notes', content_rowid='id');
CREATE TRIGGER notes_fts_insert AFTER INSERT ON notes BEGIN
    INSERT INTO notes_fts (rowid, text) VALUES (new.id, new.text);
END;
"""

# Verdicts an evaluator could not give (garbage, unreachable): neither done nor not done.
_V2 = """
ALTER TABLE verdicts ADD COLUMN unknown INTEGER NOT NULL DEFAULT 0;
"""

# The tamper guard's flags of a verdict, as a JSON list of {rule, path, line, message}.
_V3 = """
ALTER TABLE verdicts ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
"""

# When the owning process started: with owner_pid it tells that process from a later one that
# was given the same pid (which would leave the run "running" forever).
_V4 = """
ALTER TABLE runs ADD COLUMN owner_started REAL;
"""

# Automatic resumes of a run in a row after its service died (reset when an iteration
# finishes): the bound that keeps a run that crashes its service from spinning.
_V5 = """
ALTER TABLE runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
"""

# The service's own errors (a command that failed inside it, a run it could not resume), so
# that `looptui service status` shows them after the service that met them is gone.
_V6 = """
CREATE TABLE service_errors (
    id          INTEGER PRIMARY KEY,
    created_at  REAL NOT NULL,
    pid         INTEGER NOT NULL,
    message     TEXT NOT NULL
);
"""

# The ledger of trigger firings (each a row before anything happens, settled with its outcome)
# and the stored schedule: every trigger's next fire time and its one queued firing, so that a
# restart resumes exactly (see docs/triggers.md).
_V7 = """
CREATE TABLE firings (
    id              INTEGER PRIMARY KEY,
    loop            TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    due_at          REAL NOT NULL,
    fired_at        REAL NOT NULL,
    payload         TEXT NOT NULL,      -- JSON
    outcome         TEXT NOT NULL,
    run_id          TEXT,
    reason          TEXT,
    coalesced_into  INTEGER,            -- the firing this one was folded into
    retry_at        REAL                -- when a deferred firing is tried again
);
CREATE INDEX firings_by_loop ON firings (loop, id);

CREATE TABLE schedule (
    loop            TEXT,
    trigger         TEXT,
    next_due_at     REAL,
    paused          INTEGER NOT NULL DEFAULT 0,
    waiting_firing  INTEGER,            -- the one firing queued behind a running one
    PRIMARY KEY (loop, trigger)
);
"""

# The scheduler's stored state per trigger: `anchor`, when an `every` schedule began (its
# phase survives a restart), and `spec`, the trigger as configured when its next fire time was
# computed (an edited trigger is scheduled anew). A loop's queued firing is its pending firing
# that has no run yet: the ledger holds it, so the schedule no longer names it.
_V8 = """
ALTER TABLE schedule ADD COLUMN anchor REAL;
ALTER TABLE schedule ADD COLUMN spec TEXT;
ALTER TABLE schedule DROP COLUMN waiting_firing;
CREATE INDEX firings_pending ON firings (loop, id) WHERE outcome = 'pending';
"""

# When a run that a usage limit deferred resumes (the limit's reset, epoch seconds).
_V9 = """
ALTER TABLE runs ADD COLUMN retry_at REAL;
"""

# The branch tip a `git` trigger last looked at, so that commits made while the service was
# down fire once when it starts, even for a trigger that never fired.
_V10 = """
ALTER TABLE schedule ADD COLUMN last_tip TEXT;
UPDATE schedule SET last_tip = (
    SELECT json_extract(firings.payload, '$.commit.sha') FROM firings
    WHERE firings.loop = schedule.loop AND firings.trigger = schedule.trigger
      AND json_extract(firings.payload, '$.commit.sha') IS NOT NULL
    ORDER BY firings.id DESC LIMIT 1
);
"""

# Memory with provenance: a note belongs to a loop, says where it came from (`sources`, a
# JSON list), whether it may reach later runs (`status`), whether the human edited it, how
# often it was used and (a lesson) from how many runs it was distilled and on what subject.
# The search index follows edits and deletions.
_V11 = """
ALTER TABLE notes ADD COLUMN loop TEXT NOT NULL DEFAULT '';
UPDATE notes SET loop = coalesce((SELECT loop FROM runs WHERE runs.id = notes.run_id), '');
ALTER TABLE notes ADD COLUMN status TEXT NOT NULL DEFAULT 'kept';
ALTER TABLE notes ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE notes ADD COLUMN edited_at REAL;
ALTER TABLE notes ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notes ADD COLUMN seen INTEGER NOT NULL DEFAULT 1;
ALTER TABLE notes ADD COLUMN key TEXT;
CREATE INDEX notes_by_loop ON notes (loop, status, id);
CREATE TRIGGER notes_fts_delete AFTER DELETE ON notes BEGIN
    INSERT INTO notes_fts (notes_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER notes_fts_update AFTER UPDATE OF text ON notes BEGIN
    INSERT INTO notes_fts (notes_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO notes_fts (rowid, text) VALUES (new.id, new.text);
END;
"""

# The system text an iteration's agent sent with its prompt (NULL: none of looptui's), and
# whether it was added to the agent's own system prompt rather than the whole of it.
_V12 = """
ALTER TABLE iterations ADD COLUMN system_prompt TEXT;
ALTER TABLE iterations ADD COLUMN system_appended INTEGER NOT NULL DEFAULT 0;
"""

# The events' index holds their text, not their JSON: the string values of the payload (an
# output line, a tool's input and output, a verdict's reasons, a check's tail), so that keys
# such as "line" or "stream" match nothing and a hit's snippet reads as text; the stream's
# name is left out. A second column, `scope`, holds a token for the event's run and one for
# its loop (`scope_tokens`), so that a search of one run or loop is narrowed by the index
# itself. `events_text` is the index's content table (snippets are cut from it); the index is
# filled here by hand, as FTS5's 'rebuild' cannot read a view. Ranking weighs `text` alone.
_EVENT_TEXT = """(SELECT group_concat(value, ' ') FROM json_tree({data})
    WHERE type = 'text' AND key IS NOT 'stream')"""
_SCOPE = "'r' || lower(hex({run})) || coalesce(' l' || lower(hex({loop})), '')"
_SEARCHABLE = ", ".join(f"'{kind}'" for kind in SEARCHABLE_KINDS)
_V13 = f"""
DROP TRIGGER IF EXISTS events_fts_insert;
DROP TABLE IF EXISTS events_fts;
DROP VIEW IF EXISTS events_text;
CREATE VIEW events_text AS
SELECT e.id, {_EVENT_TEXT.format(data="e.data")} AS text,
    {_SCOPE.format(run="e.run_id", loop="r.loop")} AS scope
FROM events e LEFT JOIN runs r ON r.id = e.run_id
WHERE e.kind IN ({_SEARCHABLE}) AND json_valid(e.data);
CREATE VIRTUAL TABLE events_fts USING fts5 (
    text, scope, content='events_text', content_rowid='id'
);
INSERT INTO events_fts (events_fts, rank) VALUES ('rank', 'bm25(1.0, 0.0)');
INSERT INTO events_fts (rowid, text, scope) SELECT id, text, scope FROM events_text;
CREATE TRIGGER events_fts_insert AFTER INSERT ON events
WHEN new.kind IN ({_SEARCHABLE}) AND json_valid(new.data)
BEGIN
    INSERT INTO events_fts (rowid, text, scope) VALUES (
        new.id,
        {_EVENT_TEXT.format(data="new.data")},
        {_SCOPE.format(run="new.run_id", loop="(SELECT loop FROM runs WHERE id = new.run_id)")}
    );
END;
"""


# Review kept: the decisions taken on a run's diff (by the TUI or `looptui review`), keyed by
# the content of each unit so that a unit the run changed since is undecided again; and, once
# merged, how much of the run review covered (a JSON `ReviewTally`; NULL before a merge).
_V14 = """
CREATE TABLE review_decisions (
    run_id      TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    decisions   TEXT NOT NULL,          -- JSON: `Selection.to_data()`
    updated_at  REAL NOT NULL
);
ALTER TABLE runs ADD COLUMN review TEXT;
"""


def scope_token(what: str, name: str) -> str:
    """The `scope` token of a run (`what` "r") or a loop ("l") in the events' index."""
    return what + name.encode().hex()


MIGRATIONS: tuple[str, ...] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
    _V10,
    _V11,
    _V12,
    _V13,
    _V14,
)
SCHEMA_VERSION = len(MIGRATIONS)
