"""Feature shards on disk: incremental, resumable and never half-written.

A store is a folder of shards. Each shard is a Parquet table of manifest keys plus arrays,
either inline as fixed-size list columns (``format="parquet"``) or beside it as ``.npy`` files
(``format="npy"``; the table is written last, so a table on disk means a complete shard).
``store.json`` holds the feature key (hash of the parameters): a different key empties the store.
Rejected clips are recorded in ``rejects-*.parquet`` with their reason and are not retried.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from emotion_models import atomic

REJECT_COLUMNS = {"clip_id": pl.Utf8, "path": pl.Utf8, "reason": pl.Utf8}


@dataclass
class Extracted:
    """One worker result: the keys row, and either arrays or a reject reason.

    A clip that yields several samples (video windows) sets ``rows``, one per sample, and its
    arrays then carry a leading sample axis.
    """

    row: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str | None = None
    rows: list[dict] | None = None


def parameters_key(payload: dict) -> str:
    """A short, stable hash of the parameters that shape some features (a store's key)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def worker_count(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


class FeatureStore:
    def __init__(self, root: str | Path, key: str, array_format: Literal["parquet", "npy"]) -> None:
        self.root = Path(root)
        self.key = key
        self.format = array_format
        meta = self.root / "store.json"
        if meta.is_file() and json.loads(meta.read_text()).get("key") != key:
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        if not meta.is_file():
            atomic.write_json(meta, {"key": key, "format": array_format})

    def _tables(self) -> list[Path]:
        return sorted(self.root.glob("shard-*.parquet"))

    def _next_number(self) -> int:
        names = [p.name for p in self.root.glob("*-*.parquet")]
        numbers = [int(n.rsplit("-", 1)[1].split(".")[0]) for n in names]
        return max(numbers, default=-1) + 1

    def completed(self) -> set[str]:
        """clip_ids already extracted or rejected with this key."""
        done: set[str] = set()
        for path in [*self._tables(), *self.root.glob("rejects-*.parquet")]:
            done.update(pl.read_parquet(path, columns=["clip_id"])["clip_id"].to_list())
        return done

    def write_shard(self, rows: list[dict], arrays: dict[str, np.ndarray]) -> Path:
        number = self._next_number()
        table = pl.DataFrame(rows)
        if self.format == "parquet":
            for name, values in arrays.items():
                flat = values.reshape(values.shape[0], -1)
                table = table.with_columns(pl.Series(name, flat, dtype=pl.Array(pl.Float32, flat.shape[1])))
        else:
            for name, values in arrays.items():
                atomic.write_npy(self.root / f"{name}-{number:05d}.npy", values)
        return atomic.write_parquet(self.root / f"shard-{number:05d}.parquet", table, row_group_size=len(rows))

    def write_rejects(self, rejects: list[dict]) -> None:
        if rejects:
            frame = pl.DataFrame(rejects, schema=REJECT_COLUMNS)
            atomic.write_parquet(self.root / f"rejects-{self._next_number():05d}.parquet", frame)

    def rejects(self) -> pl.DataFrame:
        paths = sorted(self.root.glob("rejects-*.parquet"))
        return pl.concat([pl.read_parquet(p) for p in paths]) if paths else pl.DataFrame(schema=REJECT_COLUMNS)

    def index(self) -> pl.DataFrame:
        """Keys of every extracted row, with its shard number and row."""
        frames = []
        for number, path in enumerate(self._tables()):
            keys = pl.read_parquet(path, columns=["clip_id"])
            frames.append(keys.with_columns(pl.lit(path.name).alias("shard"),
                                            pl.int_range(pl.len(), dtype=pl.Int32).alias("row")))
        return pl.concat(frames) if frames else pl.DataFrame(schema={"clip_id": pl.Utf8, "shard": pl.Utf8, "row": pl.Int32})

    def iter_shards(self, array_names: Iterable[str], shapes: dict[str, tuple[int, ...]] | None = None
                    ) -> Iterator[tuple[pl.DataFrame, dict[str, np.ndarray]]]:
        """Yield ``(keys table, arrays)`` shard by shard; arrays are reshaped with ``shapes``."""
        for path in self._tables():
            number = path.stem.split("-")[1]
            if self.format == "parquet":
                table = pl.read_parquet(path)
                arrays = {name: table[name].to_numpy() for name in array_names}
                table = table.drop(list(array_names))
            else:
                table = pl.read_parquet(path)
                arrays = {name: np.load(self.root / f"{name}-{number}.npy", mmap_mode="r") for name in array_names}
            if shapes:
                arrays = {n: a.reshape((a.shape[0], *shapes[n])) if n in shapes else a for n, a in arrays.items()}
            yield table, arrays


def extract(
    items: list[dict],
    featurise: Callable[[dict], Extracted],
    store: FeatureStore,
    workers: int,
    shard_rows: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Featurise every item whose clip_id is not in ``store`` yet; returns (extracted, rejected).

    Work runs in a pool of ``workers`` processes (0 = every core). Results are flushed in shards
    of ``shard_rows``; a crash loses at most the shard in progress, and a rerun continues.
    """
    done = store.completed()
    todo = [item for item in items if item["clip_id"] not in done]
    rows: list[dict] = []
    arrays: dict[str, list[np.ndarray]] = {}
    rejects: list[dict] = []
    n_ok = n_bad = 0

    def flush() -> None:
        nonlocal rows, arrays
        if rows:
            store.write_shard(rows, {name: np.stack(values) for name, values in arrays.items()})
        store.write_rejects(rejects)
        rows, arrays = [], {}
        rejects.clear()

    n_workers = min(worker_count(workers), max(1, len(todo)))
    results: Iterable[Extracted]
    pool = None
    if n_workers > 1:
        pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(featurise, todo, chunksize=max(1, min(16, len(todo) // (4 * n_workers))))
    else:
        results = map(featurise, todo)
    try:
        for count, result in enumerate(results, start=1):
            if result.reason is not None:
                n_bad += 1
                rejects.append({"clip_id": result.row["clip_id"], "path": result.row.get("path"), "reason": result.reason})
            else:
                n_ok += 1
                rows.extend(result.rows if result.rows is not None else [result.row])
                for name, value in result.arrays.items():
                    target = arrays.setdefault(name, [])
                    target.extend(value) if result.rows is not None else target.append(value)
            if len(rows) >= shard_rows:
                flush()
            if progress:
                progress(count, len(todo))
        flush()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return n_ok, n_bad
