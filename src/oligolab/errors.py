"""One exception type for bad input: it names the file, the line or record, and the fix, in one line."""

from __future__ import annotations

import errno
from pathlib import Path

#: what to do about an operating-system failure, by errno (the rest get a generic fix)
_OS_FIXES = {
    errno.ENOSPC: "free disk space or write the output elsewhere",
    errno.EDQUOT: "free space in your quota or write the output elsewhere",
    errno.EACCES: "choose a location you may write to, or ask for write permission",
    errno.EPERM: "choose a location you may write to, or ask for write permission",
    errno.EROFS: "the file system is read-only: write the output elsewhere",
    errno.ENOTDIR: "a file stands where a folder is expected: choose another path",
    errno.EISDIR: "a folder stands where a file is expected: choose another path",
    errno.EEXIST: "something already exists at that path: choose another path",
    errno.ENOENT: "check that the path exists",
    errno.ENAMETOOLONG: "choose a shorter path",
}


class InputError(ValueError):
    """Malformed user input. ``str(err)`` is the one-line message the CLI prints."""

    def __init__(
        self,
        path: str | Path | None,
        problem: str,
        fix: str = "",
        *,
        line: int | None = None,
        record: str | None = None,
    ):
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

    @classmethod
    def from_os_error(cls, exc: OSError, path: str | Path | None = None) -> InputError:
        """The one-line form of an operating-system failure (disk full, permission denied, ...)."""
        where = path if path is not None else (exc.filename or None)
        problem = exc.strerror or str(exc)
        fix = _OS_FIXES.get(exc.errno or 0, "check the path and the file system, then run again")
        return cls(where, problem, fix)

    def __reduce__(self):
        """Picklable with its keyword fields (errors travel back from analysis processes)."""
        return _rebuild_input_error, (self.path, self.problem, self.fix, self.line, self.record)


def _rebuild_input_error(path, problem, fix, line, record) -> InputError:
    return InputError(path, problem, fix, line=line, record=record)
