"""The one client the TUI and the CLI share: the engine in this process, or the repository's
service over its socket, behind one interface (`Supervisor`)."""
