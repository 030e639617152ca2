"""Read a W&B offline run back from its `.wandb` file with W&B's own record protos.

The installed wandb (0.2x-0.3x, Go core) has no Python reader of its transaction log any more
(`wandb sync --view` is gone); the file is a LevelDB-style log of 32 KiB blocks (7-byte chunk
headers: CRC, length, type) after a 7-byte `:W&B` header, each record a
`wandb_internal_pb2.Record`. Only tests use this.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out, pos, buf = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is padding
            pos += left
            continue
        _crc, n, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        pos += HEADER
        chunk = data[pos : pos + n]
        pos += n
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            buf = chunk
        elif kind == MIDDLE:
            buf += chunk
        elif kind == LAST:
            out.append(buf + chunk)
        elif kind == 0 and n == 0:  # zero padding up to the block's end
            pos += (BLOCK - pos % BLOCK) % BLOCK
    return out


@dataclass
class OfflineRun:
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per step
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_run(folder: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb

    (log,) = folder.glob("run-*.wandb")
    out = OfflineRun()
    for raw in raw_records(log):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.run_id, out.name, out.group, out.job_type = (
                r.run_id, r.display_name, r.run_group, r.job_type,
            )  # fmt: skip
            out.tags = list(r.tags)
            out.config = {i.key: json.loads(i.value_json) for i in r.config.update}
        elif kind == "config":
            out.config.update({_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "history":
            out.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out.summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "exit":
            out.exit_code = rec.exit.exit_code
    return out
