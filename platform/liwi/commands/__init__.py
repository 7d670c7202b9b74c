"""Subcommands of the ``liwi`` CLI; each module is light at import time."""
