"""What of the memory a prompt carries: the loop's accepted notes from earlier runs, most
useful first, within a size bound.

Useful means: the human wrote or edited it, several runs' evidence led to it, it names a
check that fails now, it is recent. Only `accepted` notes of the same loop qualify (memory is
never shared across loops or repositories); a run's own notes reach its later iterations by
another way (the runner keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from looptui.engine.models import CheckResult, Note, NoteStatus

MEMORY_CHARS = 6_000  # of the prompt given to notes from earlier runs
CANDIDATES = 500  # accepted notes of a loop looked at, the newest


def usefulness(note: Note, failing: Iterable[str], newest: float) -> float:
    """A note's rank: higher first."""
    score = float(min(note.seen, 5))
    if note.edited_at is not None or any(s.kind == "human" for s in note.sources):
        score += 3.0  # the human's own words
    text = note.text.lower()
    if any(name.lower() in text for name in failing):
        score += 4.0  # about what goes wrong now
    age_days = max(newest - note.created_at, 0.0) / 86_400
    return score + 1.0 / (1.0 + age_days)


def choose(
    notes: Sequence[Note],
    run_id: str,
    failing: Sequence[CheckResult] = (),
    budget: int = MEMORY_CHARS,
) -> list[Note]:
    """The accepted notes of other runs that fit in `budget` characters, most useful first."""
    candidates = [n for n in notes if n.status is NoteStatus.ACCEPTED and n.run_id != run_id]
    if not candidates:
        return []
    newest = max(note.created_at for note in candidates)
    names = [check.name for check in failing]
    ranked = sorted(candidates, key=lambda n: usefulness(n, names, newest), reverse=True)
    chosen, used = [], 0
    for note in ranked:
        size = len(note.text) + 40  # the line's own words around the text
        if used + size > budget:
            continue
        chosen.append(note)
        used += size
    return chosen
