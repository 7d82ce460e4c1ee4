"""Search over everything stored: the events' and the notes' full-text indexes (FTS5), ranked.

What the user types never reaches FTS5 as syntax: `fts_query` turns it into quoted terms, all
of which must match (`"a phrase"` keeps its words together, `word*` matches a prefix), so
`OR`, `NEAR(`, `-` or an unbalanced quote are just text. A hit names where it was found (run,
loop, iteration, time) and carries a one-line snippet with the matches marked by spans.

Ranking is FTS5's bm25, lowest first; the events and the notes are two indexes, each ranked
against its own documents, and merged by that score. Only the best `limit` of each index are
read in full: the snippets are cut for those alone (see `_EVENT_HITS`).
"""

from __future__ import annotations

import abc
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from looptui.engine.errors import RunNotFound, SearchError
from looptui.engine.models import Run
from looptui.engine.store.schema import scope_token

SNIPPET_TOKENS = 16  # words of context a snippet holds around its matches
MAX_LIMIT = 1000
CANDIDATES = 20_000  # the most matches of the events' index that are ranked (the newest)
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: no agent prints them
_TERM = re.compile(r'"([^"]*)"?|(\S+)')  # a quoted phrase (closed or not), or a word
_WORDY = re.compile(r"\w")  # a term FTS5 would find tokens in

Source = Literal["event", "note"]


@dataclass(frozen=True)
class SearchHit:
    """One match: an event (`kind` is its event kind) or a note (`kind` is the note's kind).

    `snippet` is one line of the matched text around the matches; `marks` are the (start,
    end) offsets of the matched words in it. `rank` is bm25's score: lower is better."""

    source: Source
    id: int  # the event's or the note's row id
    kind: str
    run_id: str
    loop: str
    iteration: int
    ts: float
    snippet: str
    marks: tuple[tuple[int, int], ...] = ()
    rank: float = 0.0


def fts_query(text: str) -> str:
    """The FTS5 query for what the user typed: each word or `"phrase"` quoted, all required;
    a trailing `*` on a word asks for a prefix. SearchError when nothing searchable is left."""
    terms = []
    for match in _TERM.finditer(text):
        phrase, word = match.group(1), match.group(2)
        prefix = False
        if word is not None:
            prefix = word.endswith("*") and _WORDY.search(word.rstrip("*")) is not None
            phrase = word.rstrip("*") if prefix else word
        if phrase is None or not _WORDY.search(phrase):
            continue  # punctuation alone: FTS5 finds no token in it, and would match nothing
        quoted = '"' + phrase.replace('"', '""') + '"'
        terms.append("text : " + (quoted + " *" if prefix else quoted))
    if not terms:
        raise SearchError(f'nothing to search for in {text!r}: give a word or a "phrase"')
    return " AND ".join(terms)


def marked(snippet: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A snippet cut with the private marks as one line of text (runs of whitespace become
    one space) and the spans the marks enclosed."""
    out: list[str] = []
    marks: list[tuple[int, int]] = []
    start: int | None = None
    length = 0
    for char in snippet:
        if char == _OPEN:
            start = length
        elif char == _CLOSE:
            if start is not None and length > start:
                marks.append((start, length))
            start = None
        elif char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                length += 1
        else:
            out.append(char)
            length += 1
    text = "".join(out)
    stripped = text.rstrip()
    return stripped, tuple((a, min(b, len(stripped))) for a, b in marks if a < len(stripped))


_SNIPPET = f"snippet({{table}}, 0, '{_OPEN}', '{_CLOSE}', '…', {SNIPPET_TOKENS})"

# The best `limit` matches by rank, with their snippets, in a query of the index alone: FTS5
# sorts by rank itself and SQLite then asks it for `limit` rows only, so that snippets are
# cut for those alone (a second sort key, or a join, would make SQLite sort every match, a
# snippet cut for each). Ranking scores every candidate, so a word in more than CANDIDATES
# events has only its newest CANDIDATES ranked: the rowid of the oldest of those bounds the
# ranked query (found by walking the matches newest first, which scores nothing). A run or a
# loop is a term of the match (its `scope` token), so the index narrows to it first.
_EVENT_HITS = f"""
WITH top (id, score, snippet) AS MATERIALIZED (
    SELECT rowid, rank, {_SNIPPET.format(table="events_fts")} FROM events_fts
    WHERE events_fts MATCH ?1 AND rowid >= coalesce((
        SELECT rowid FROM events_fts WHERE events_fts MATCH ?1
        ORDER BY rowid DESC LIMIT 1 OFFSET {CANDIDATES - 1}
    ), 0)
    ORDER BY rank LIMIT ?2
)
SELECT top.id, top.score, top.snippet, e.kind, e.run_id, coalesce(r.loop, '') AS loop,
    e.iteration, e.ts
FROM top
JOIN events e ON e.id = top.id
LEFT JOIN runs r ON r.id = e.run_id
ORDER BY top.score, top.id DESC
"""

_NOTE_HITS = f"""
WITH top (id, score) AS MATERIALIZED (
    SELECT f.rowid, f.rank FROM notes_fts f
    JOIN notes n ON n.id = f.rowid
    {{join}}
    WHERE notes_fts MATCH ?1 {{where}}
    ORDER BY f.rank, f.rowid DESC LIMIT ?2
)
SELECT top.id, top.score, n.kind, n.run_id, coalesce(r.loop, '') AS loop, n.iteration,
    n.created_at AS ts, {_SNIPPET.format(table="notes_fts")} AS snippet
FROM top
JOIN notes_fts ON notes_fts.rowid = top.id AND notes_fts MATCH ?1
JOIN notes n ON n.id = top.id
LEFT JOIN runs r ON r.id = n.run_id
ORDER BY top.score, top.id DESC
"""


class Searching(abc.ABC):
    """The search query, over the reads a store provides."""

    @abc.abstractmethod
    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    @abc.abstractmethod
    async def find_run(self, prefix: str) -> Run: ...

    async def search(
        self,
        query: str,
        *,
        loop: str | None = None,
        run: str | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        """The best `limit` events and notes matching `query` (see `fts_query`), best first;
        only those of `loop`, or of the run whose id starts with `run`. SearchError for a
        query with no word; RunNotFound for a run or a loop the store has no run of."""
        match = fts_query(query)
        limit = max(1, min(limit, MAX_LIMIT))
        run_id = None if run is None else (await self.find_run(run)).id
        if loop is not None:
            rows = await self._fetchall("SELECT 1 FROM runs WHERE loop = ? LIMIT 1", (loop,))
            if not rows:
                raise RunNotFound(f"no stored run belongs to loop {loop!r}")
        (events, of_events), (notes, of_notes) = statements(match, limit, run_id, loop)
        hits = [_hit("event", row) for row in await self._fetchall(events, of_events)]
        hits += [_hit("note", row) for row in await self._fetchall(notes, of_notes)]
        hits.sort(key=lambda hit: (hit.rank, -hit.ts))
        return hits[:limit]


def statements(
    match: str, limit: int, run_id: str | None, loop: str | None
) -> tuple[tuple[str, tuple[Any, ...]], tuple[str, tuple[Any, ...]]]:
    """The two queries of a search (the events', the notes') and their parameters, for the
    FTS5 query `match` (see `fts_query`), of one run and one loop when given."""
    events_match, where, join = match, "", ""
    notes_params: tuple[Any, ...] = (match, limit)
    if run_id is not None:
        events_match += f' AND scope : "{scope_token("r", run_id)}"'
        where += " AND n.run_id = ?3"
        notes_params = (match, limit, run_id)
    if loop is not None:
        events_match += f' AND scope : "{scope_token("l", loop)}"'
        where += " AND r.loop = ?4"
        join = "JOIN runs r ON r.id = n.run_id"
        notes_params = (match, limit, run_id, loop)
    notes = _NOTE_HITS.format(join=join, where=where)
    return (_EVENT_HITS, (events_match, limit)), (notes, notes_params)


def _hit(source: Source, row: sqlite3.Row) -> SearchHit:
    snippet, marks = marked(row["snippet"] or "")
    return SearchHit(
        source=source,
        id=row["id"],
        kind=row["kind"],
        run_id=row["run_id"],
        loop=row["loop"],
        iteration=row["iteration"],
        ts=row["ts"],
        snippet=snippet,
        marks=marks,
        rank=row["score"],
    )


__all__ = ["SearchHit", "Searching", "fts_query", "statements"]
