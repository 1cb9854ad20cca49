"""The generic table vocabulary of the layouts (registry options ``table`` and ``columns``).

``table``: ``delimiter`` (whitespace, comma, or tab: a TAB alone separates, so a name may hold spaces), ``header`` (``first_line``: the column names on the first line;
``comment_line``: on a leading ``#`` line, as CosmoMC's lcparam files and the Moresco systematics table write it;
``varnames``: SNANA's keyed layout, a ``VARNAMES:`` line naming the columns and one ``SN:`` line per row;
``none``: no header, the columns named by their 1-based position "1", "2", ...) and ``header_extra_names`` (names at
the end of the header without a column in the rows). ``columns``: role -> column name or 1-based position.
Comment lines (``#``) and blank lines are skipped; CRLF, a BOM and a missing final newline are accepted
(:class:`~pbuf_data.read.textio.RawFile`).
"""

from __future__ import annotations

import numpy as np

from ..textio import Line


def table_lines(table, reading: dict):
    """(lines, header names, fields per row): the header line first, then the data rows."""
    split = {"comma": ",", "tab": "\t"}.get(reading["delimiter"])
    if reading["header"] == "comment_line":
        lines = table.lines(comment=None, split=split)
        if not lines[0].fields[0].startswith("#"):
            raise table.error("the header must be a '#' comment line (options.table.header: comment_line)",
                              line=lines[0].number, check="header")
        first = lines[0]
        first.fields[0] = first.fields[0][1:]
        if not first.fields[0]:
            first.fields.pop(0)
        lines = [first, *[ln for ln in lines[1:] if not ln.fields[0].startswith("#")]]
    elif reading["header"] == "varnames":  # SNANA FITRES/HD: "VARNAMES: a b c" then "SN: x y z" rows
        lines = _snana_lines(table, split)
    elif reading["header"] == "none":  # columns by 1-based position: the header is "1", "2", ...
        lines = table.lines(comment="#", split=split)
        lines = [Line(0, [str(i + 1) for i in range(len(lines[0].fields))]), *lines]
    else:
        lines = table.lines(comment="#", split=split)
    if split:
        for ln in lines:
            ln.fields[:] = [field.strip() for field in ln.fields]
    header = lines[0].fields
    extra = reading["header_extra_names"]
    if extra >= len(header):
        raise table.error(f"header_extra_names {extra} leaves no column of the header's {len(header)}",
                          line=lines[0].number, check="header")
    return lines, header[: len(header) - extra], len(header) - extra


def _snana_lines(table, split):
    """The SNANA key layout: the ``VARNAMES:`` line names the columns, each ``SN:`` row holds one object (the keys
    themselves are not columns); other keyed lines (``NVAR:``, ``DOCUMENTATION:`` ...) and comments are skipped."""
    header, rows = None, []
    for ln in table.lines(comment="#", split=split):
        key = ln.fields[0].strip()
        if key == "VARNAMES:":
            if header is not None:
                raise table.error("a second VARNAMES: line", line=ln.number, check="header")
            header = Line(ln.number, ln.fields[1:])
        elif key == "SN:":
            if header is None:
                raise table.error("an SN: row before the VARNAMES: line", line=ln.number, check="header")
            rows.append(Line(ln.number, ln.fields[1:]))
    if header is None:
        raise table.error("no VARNAMES: line (options.table.header: varnames)", check="header")
    return [header, *rows]


def read_columns(table, reading: dict, columns: dict, text_roles=(), key: str = "options.columns"):
    """The columns ``columns`` (role -> name or 1-based position) of a table laid out as ``reading`` says.

    Returns ``(line numbers of the rows, {role: array})``: float arrays, string arrays for ``text_roles``.
    A column the header does not name, a role mapped twice or a row of another width is an error naming the
    file, the line and the entry's key.
    """
    lines, header, ncols = table_lines(table, reading)
    names = {role: str(column) for role, column in columns.items()}
    if len(set(header)) != len(header):
        raise table.error("duplicated column names in the header", line=lines[0].number, check="columns")
    position = {name: i for i, name in enumerate(header)}
    seen = {}
    for role, name in names.items():
        if name not in position:
            where = "positions 1.." + str(ncols) if reading["header"] == "none" else f"names {header}"
            raise table.error(f"{key}.{role}: no column '{name}' (the table has {where})", line=lines[0].number or
                              lines[1].number if len(lines) > 1 else None, check="columns")
        if name in seen:
            raise table.error(f"{key}: column '{name}' is mapped to both {seen[name]} and {role}", check="columns")
        seen[name] = role
    rows = lines[1:]
    if not rows:
        raise table.error("the table has a header but no data rows", check="non-empty")
    values = {role: [] for role in names}
    for ln in rows:
        if len(ln.fields) != ncols:
            raise table.error(f"expected {ncols} columns, found {len(ln.fields)}", line=ln.number, check="column count")
        for role, name in names.items():
            col = position[name]
            token = ln.fields[col]
            values[role].append(token if role in text_roles else table.number(token, ln.number, col + 1))
    arrays = {role: np.array(v, dtype=np.str_ if role in text_roles else np.float64) for role, v in values.items()}
    return [ln.number for ln in rows], arrays
