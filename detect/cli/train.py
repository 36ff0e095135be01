"""CLI commands of this group (filled in by the issue that builds them)."""


def register(app) -> None:
    """Add this module's commands to the root app."""
