"""The one kind of error a learner's bad input gets (chapter 8's command line).

`InputError(field, expected, got)` reads "field: expected ..., got ...". It is a ValueError, so
code that catches ValueError still does; the command line prints it as one line,
`error: <field>: expected ..., got ...`, and exits with status 2.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input, named: which field, what was expected, what came."""

    def __init__(self, field: str, expected: str, got: object):
        self.field, self.expected, self.got = field, expected, got
        super().__init__(f"{field}: expected {expected}, got {got}")
