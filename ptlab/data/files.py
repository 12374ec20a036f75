"""Reading the user's text and CSV files: the one place that turns a wrong kind of file into a ConfigError.

A folder, a file that cannot be read, a binary file, UTF-16/UTF-32 text or any
other encoding than UTF-8 each get one message that names the config key and
the fix, instead of an ``IsADirectoryError`` or ``UnicodeDecodeError``.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

from ptlab.errors import ConfigError

_SAMPLE = 4096  # bytes looked at to tell UTF-16 without a byte-order mark from binary data
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),  # UTF-32 LE starts with UTF-16 LE's
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def read_text_file(path: Path, key: str, what: str = "text file", universal_newlines: bool = True) -> str:
    """The text of ``path`` decoded as UTF-8 (a leading byte-order mark dropped, as spreadsheets write one).

    ``key`` is the config key that named the file and ``what`` the kind of file
    it should be ("CSV file"); both go into the error messages. Line endings
    become ``\\n`` as with ``Path.read_text``, unless ``universal_newlines`` is
    false (the csv module wants them as they are).
    """
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a folder; give the path of a UTF-8 {what}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{key}: cannot read {path} ({err.strerror}); give a {what} you can read") from None
    wide = _wide_encoding(raw)
    if wide:
        raise ConfigError(f"{key}: {path} is not UTF-8 text (it looks like {wide}); re-save it as UTF-8")
    if b"\0" in raw:
        raise ConfigError(f"{key}: {path} is a binary file (it holds NUL bytes), not text; give a UTF-8 {what}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{key}: {path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start} "
                          "is not UTF-8); re-save it as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if universal_newlines else text


def _wide_encoding(raw: bytes) -> str | None:
    """The name UTF-16 or UTF-32 when ``raw`` starts with its byte-order mark or reads as UTF-16 without one.

    Mostly-ASCII UTF-16 has a NUL in every other byte (the odd ones for little
    endian, the even ones for big endian) and almost none in the others.
    """
    for bom, name in _WIDE_BOMS:
        if raw.startswith(bom):
            return name
    sample = raw[:_SAMPLE]
    half = len(sample) // 2
    if not half:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return "UTF-16" if max(even, odd) > 0.3 * half and min(even, odd) < 0.02 * half else None


def csv_rows(path: Path, key: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a UTF-8 CSV file (its header, if it has one, first), each with its line number."""
    reader = csv.reader(io.StringIO(read_text_file(path, key, "CSV file", universal_newlines=False), newline=""))
    try:
        return [(reader.line_num, row) for row in reader if row]
    except csv.Error as err:
        raise ConfigError(f"{key}: {path} line {reader.line_num} is not valid CSV ({err}); fix that line") from None
