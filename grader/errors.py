"""Errors a user can act on: the CLI prints their message on one line, without a traceback."""


class GraderError(Exception):
    """A problem with the grader's inputs or environment that the user can fix."""
