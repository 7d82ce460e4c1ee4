"""The one typed protocol between the engine and its clients: events, commands and their
encoding, used unchanged in-process and over the service's socket."""

PROTOCOL_VERSION = 2  # 2: `search` takes a query, a loop and a run, and answers hits
