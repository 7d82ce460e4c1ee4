"""What the review cursor reached is kept with the decisions (`KeptDecision.shown`), by the
content of each unit, so that a merge in a later session does not count it as unread."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec

from conftest import git
from looptui.engine.models import Decision, KeptDecision
from looptui.engine.store import Store
from looptui.engine.workspace import Selection, parse_patch, shown_in
from looptui.engine.workspace.selection import content_ids, digest
from test_review_lines import NEW, diff_repo
from test_store import a_run


def stored(data: list[KeptDecision]) -> list[KeptDecision]:
    """`data` through JSON, as the store and the service carry it."""
    return msgspec.json.decode(msgspec.json.encode(data), type=list[KeptDecision])


def test_shown_is_kept_for_decided_and_undecided_units_while_they_are_unchanged(
    tmp_path: Path,
) -> None:
    root, text = diff_repo(tmp_path)
    patch = parse_patch(text)
    first, second = patch.files[0].hunks
    selection = Selection(patch)
    selection.reject(first.key)
    assert selection.to_data() == [
        KeptDecision(digest(content_ids(patch)[first.key]), Decision.REJECTED)
    ]

    kept = stored(selection.to_data(shown={first.key, second.key}))
    assert [(entry.decision, entry.shown) for entry in kept] == [
        (Decision.REJECTED, True),
        (Decision.UNDECIDED, True),  # reached, not decided: kept all the same
    ]
    again = Selection.from_data(patch, kept)
    assert again.decision(first.key) is Decision.REJECTED
    assert again.decision(second.key) is Decision.UNDECIDED
    assert shown_in(patch, kept) == {first.key, second.key}
    assert again.tally(shown_in(patch, kept)).unread_hunks == 0

    # the run went on and changed the second hunk: what was shown of it is not any more
    (root / "f.txt").write_text(NEW.replace("line seventeen\n", "line 17, rewritten\n"))

    changed = parse_patch(git(root, "diff"))
    held, rewritten = changed.files[0].hunks
    assert shown_in(changed, kept) == {held.key}
    assert Selection.from_data(changed, kept).tally(shown_in(changed, kept)).unread_hunks == 1
    assert rewritten.key not in shown_in(changed, kept)


async def test_decisions_kept_before_shown_existed_still_read(tmp_path: Path) -> None:
    _, text = diff_repo(tmp_path)
    patch = parse_patch(text)
    first, second = patch.files[0].hunks
    path = tmp_path / "store.db"
    store = await Store.open(path)
    try:
        await store.insert_run(a_run())
        await store.flush()
        old = [{"unit": digest(content_ids(patch)[first.key]), "decision": "rejected"}]
        with sqlite3.connect(path) as db:  # as an older looptui wrote them
            db.execute(
                "INSERT INTO review_decisions (run_id, decisions, updated_at) VALUES (?, ?, 0)",
                ("r1", json.dumps(old)),
            )
        kept = await store.review_decisions("r1")
        assert kept == [KeptDecision(old[0]["unit"], Decision.REJECTED)]
        assert not kept[0].shown
        assert Selection.from_data(patch, kept).decision(first.key) is Decision.REJECTED
        assert shown_in(patch, kept) == frozenset()
        # and what is written now reads back with its shown flags
        await store.save_review_decisions("r1", Selection(patch).to_data(shown={second.key}))
        (entry,) = await store.review_decisions("r1")
        assert (entry.decision, entry.shown) == (Decision.UNDECIDED, True)
    finally:
        await store.close()
