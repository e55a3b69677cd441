"""One exception type for bad input: it names the file, the line or record, and the fix, in one line."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Malformed user input. ``str(err)`` is the one-line message the CLI prints."""

    def __init__(self, path: str | Path | None, problem: str, fix: str = "", *, line: int | None = None,
                 record: str | None = None):
        self.path = str(path) if path is not None else None
        self.problem = problem
        self.fix = fix
        self.line = line
        self.record = record
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f", line {self.line}"
        if self.record is not None:
            where += f", record '{self.record}'"
        msg = f"{where}: {self.problem}"
        if self.fix:
            msg += f" (fix: {self.fix})"
        return msg.replace("\n", " ")

    def __reduce__(self):
        """Picklable with its keyword fields (errors travel back from analysis processes)."""
        return _rebuild_input_error, (self.path, self.problem, self.fix, self.line, self.record)


def _rebuild_input_error(path, problem, fix, line, record) -> InputError:
    return InputError(path, problem, fix, line=line, record=record)
