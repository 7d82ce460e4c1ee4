"""Memory with provenance: what a loop's runs learned, and what of it later work gets.

- `checkpoint`: after every iteration, a note of where it stands (progress, what was
  tried, problems, next steps), built from the iteration's evidence, or written by the
  loop's checkpoint-writer agent;
- `lessons`: when a run ends, lessons distilled from its failed attempts, evaluator
  reasons, tamper flags, review comments and rejected hunks, each with its sources; they
  are proposals until the human accepts them (or the loop says `lessons = "auto"`);
- `recall`: the notes a prompt carries, within a size bound, most useful first: the run's
  own checkpoints and feedback, and the loop's accepted notes from earlier runs.

Memory is per repository (the store lives in its `.git`) and per loop.
"""
