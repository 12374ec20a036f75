"""What a Weights & Biases run wrote on disk: the history rows in its transaction logs (``run-ID.wandb``).

W&B keeps no queryable local store: every process of a run writes ``RUN_DIR/wandb/
[offline-]run-TIME-ID/run-ID.wandb``, the log that ``wandb sync`` uploads, as a LevelDB-style
record log (a 7-byte header ``:W&B``, magic 0xBEE1, version 0; 32 KiB blocks of records, each
``crc32c, length, type`` then the bytes) of ``wandb_internal_pb2.Record`` messages, the
package's own schema. wandb 0.31 ships no Python reader for it, hence this one. A file torn by
a kill ends at its last complete record; a file of another format reads as empty.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Iterator

IDENT, MAGIC, VERSION = b":W&B", 0xBEE1, 0
BLOCK, RECORD_HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    """The complete ``Record`` messages of one transaction log, in order."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if len(data) < 7 or struct.unpack("<4sHB", data[:7]) != (IDENT, MAGIC, VERSION):
        return
    pos, pending = 7, b""
    while pos + RECORD_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD_HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + RECORD_HEADER])
        pos += RECORD_HEADER
        if kind not in (FULL, FIRST, MIDDLE, LAST) or pos + length > len(data):
            return  # zeros after a torn write, or a record cut off by a kill
        pending = (b"" if kind in (FULL, FIRST) else pending) + data[pos:pos + length]
        pos += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(pending)
            except DecodeError:
                return
            yield record


def history(folder: Path, run_id: str) -> list[dict[str, Any]]:
    """Every history row of run ``run_id`` under ``folder`` (``RUN_DIR/wandb``), process after process;
    a row holds its logged values and W&B's own ``_step``, ``_runtime``, ``_timestamp``."""
    rows = []
    for path in sorted(Path(folder).glob(f"*run-*-{run_id}*/run-{run_id}.wandb"), key=_started):
        for record in records(path):
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def last_steps(folder: Path, run_id: str) -> dict[str, int]:
    """The last step each metric of run ``run_id`` has on disk."""
    last: dict[str, int] = {}
    for row in history(folder, run_id):
        for key in row:
            if not key.startswith("_"):
                last[key] = max(last.get(key, -1), int(row["_step"]))
    return last


def _started(path: Path) -> tuple[str, int]:
    """The processes of a run in the order they ran: by the time in ``[offline-]run-YYYYMMDD_HHMMSS-ID``, then
    by the ``-N`` W&B adds to the folder of a process that started in the same second as an earlier one."""
    _, time, _, *again = path.parent.name.removeprefix("offline-").split("-")
    return time, int(again[0]) if again and again[0].isdigit() else 0
