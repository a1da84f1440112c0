"""Reading uploaded CSV files: UTF-8 with or without a byte-order mark, any line endings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from tripcomms.errors import DomainError, InvalidInput

MAX_ROWS = 10_000
YES = {"yes", "y", "true", "1", "x"}
NO = {"no", "n", "false", "0", ""}


@dataclass
class RowError:
    row: int  # the line of the file as a spreadsheet numbers it: the header is row 1
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class ImportRejected(DomainError):
    """The file has bad rows; nothing was imported. ``errors`` names each one."""

    def __init__(self, errors: list[RowError], what: str = "file") -> None:
        count = len(errors)
        super().__init__(
            f"the {what} was not imported: {count} row{'s' if count != 1 else ''} "
            f"{'have' if count != 1 else 'has'} problems; nothing was changed"
        )
        self.errors = errors


def decode_csv(data: bytes, *, limit: int | None = None, field: str | None = None) -> str:
    """The text of an uploaded CSV file: UTF-8, with or without a byte-order mark.

    Raises InvalidInput (naming ``field``) for an empty, binary, non-UTF-8 or, past ``limit``
    bytes, over-large file, saying what to do.
    """
    if not data or not data.strip():
        raise InvalidInput("that file is empty", field=field)
    if b"\x00" in data:
        raise InvalidInput(
            "that file is not a CSV text file (it looks like a spreadsheet, picture or other "
            "binary file); in your spreadsheet choose Save As, CSV UTF-8",
            field=field,
        )
    if limit is not None and len(data) > limit:
        raise InvalidInput(f"that file is too large (at most {limit // 1000:,} kB)", field=field)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            "that file is not UTF-8 text; in your spreadsheet choose Save As, CSV UTF-8",
            field=field,
        ) from None


def read_csv(
    data: bytes, *, required: Iterable[str], optional: Iterable[str] = ()
) -> list[tuple[int, dict[str, str]]]:
    """Parse ``data`` as a CSV with a header; return (row number, values) for each data row.

    Values are stripped; missing optional columns read as "". Raises InvalidInput when the file
    is not UTF-8 text, has no header, lacks a required column, names an unknown column, or has
    more than MAX_ROWS rows.
    """
    required, optional = list(required), list(optional)
    text = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("that file is empty") from None
    except csv.Error as err:
        raise InvalidInput(f"that file is not a readable CSV ({err})") from None
    names = [h.strip().lower() for h in header]
    expected = ",".join(required + optional)
    missing = [c for c in required if c not in names]
    if missing:
        raise InvalidInput(
            f"the header is missing {', '.join(missing)}; the first line must be: {expected}"
        )
    unknown = [n for n in names if n and n not in required + optional]
    if unknown:
        raise InvalidInput(f"unknown column {', '.join(unknown)}; the columns are: {expected}")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for line_no, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise InvalidInput(f"that file has more than {MAX_ROWS} rows; split it")
            row = dict.fromkeys(required + optional, "")
            for name, value in zip(names, values, strict=False):
                if name:
                    row[name] = value.strip()
            rows.append((line_no, row))
    except csv.Error as err:
        raise InvalidInput(f"that file is not a readable CSV ({err})") from None
    return rows


def parse_flag(value: str, column: str) -> bool:
    """yes/no, y/n, true/false, 1/0, x or empty. Raises ValueError with a readable message."""
    lowered = value.strip().lower()
    if lowered in YES:
        return True
    if lowered in NO:
        return False
    raise ValueError(f"{column} must be yes or no, not {value!r}")
