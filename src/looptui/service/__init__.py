"""The supervisor service: one per repository, outliving every window."""
