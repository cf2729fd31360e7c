"""Job records: tidy tables written atomically with their config and provenance."""

from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile
from pathlib import Path

import jax
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RECORD_NAME = "record.parquet"
METADATA_KEY = b"harness"


def provenance(seed: int) -> dict:
    """Versions, device and time of a run."""
    from harness import __version__

    device = jax.devices()[0]
    return {
        "harness_version": __version__,
        "jax_version": jax.__version__,
        "device": f"{device.platform}:{getattr(device, 'device_kind', '')}",
        "device_count": jax.device_count(),
        "python_version": platform.python_version(),
        "hostname": platform.node(),
        "seed": seed,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Writes ``payload`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file readable by its owner alone; give it the
        # permissions of any new file under the current umask instead.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_record(path: Path, table: pd.DataFrame, metadata: dict) -> Path:
    """Writes ``table`` as Parquet with ``metadata`` (JSON) in the file's schema."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    existing = arrow.schema.metadata or {}
    arrow = arrow.replace_schema_metadata(
        {**existing, METADATA_KEY: json.dumps(metadata, default=str).encode()}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return Path(path)


def read_record(path: Path) -> tuple[pd.DataFrame, dict]:
    """Reads a record and its metadata."""
    arrow = pq.read_table(path)
    metadata = json.loads((arrow.schema.metadata or {}).get(METADATA_KEY, b"{}"))
    return arrow.to_pandas(), metadata


def find_records(root: Path) -> list[Path]:
    """Every record below ``root``, in a stable order."""
    return sorted(Path(root).rglob(RECORD_NAME))


def flatten(config: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists become comma-joined strings."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat
