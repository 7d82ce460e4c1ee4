"""The one typed protocol between the engine and its clients: events, commands and their
encoding, used unchanged in-process and over the service's socket."""

# 2: `search` takes a query, a loop and a run, and answers hits; 3: `merge` takes the review's
# tally and None as `reject` means the kept decisions, runs carry their tally, and the kept
# decisions are read and written (`review_decisions`, `save_review_decisions`)
PROTOCOL_VERSION = 3
