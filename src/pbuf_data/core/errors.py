"""The project's own error type: every failure names the dataset, the file and the place."""

from __future__ import annotations

import difflib

MAX_REASON_CHARS = 2000


class PbufDataError(Exception):
    """A problem with a raw file, a registry entry or a derived dataset.

    The message always reads ``dataset: file, line L, column C: what failed``
    (parts that do not apply are left out), so a user can go straight to the
    offending place without reading a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        dataset: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: int | str | None = None,
        check: str | None = None,
    ):
        if len(message) > MAX_REASON_CHARS:  # never echo a huge value (a whole file, an expanded alias bomb)
            message = f"{message[:MAX_REASON_CHARS]}... ({len(message) - MAX_REASON_CHARS} more characters not shown)"
        self.reason = message
        self.dataset = dataset
        self.file = file
        self.line = line
        self.column = column
        self.check = check
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(f"file '{self.file}'")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column}")
        if self.check:
            where.append(f"check '{self.check}'")
        head = f"dataset '{self.dataset}'" if self.dataset else "pbuf_data"
        if where:
            head += " (" + ", ".join(where) + ")"
        return f"{head}: {self.reason}"

    def with_context(self, **context) -> "PbufDataError":
        """Return a copy with missing context fields (dataset, file, ...) filled in."""
        fields = dict(
            dataset=self.dataset,
            file=self.file,
            line=self.line,
            column=self.column,
            check=self.check,
        )
        for key, value in context.items():
            if fields.get(key) is None:
                fields[key] = value
        return PbufDataError(self.reason, **fields)


def suggest(word: str, known) -> str:
    """' (did you mean 'x'?)' with the nearest of the ``known`` names, or '' when none is near."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
