"""A split read from the shard cache batch by batch: the streaming counterpart of
:class:`ml.training.tensors.EncodedSplit`, with memory bounded by a shuffle buffer.

Training order (:meth:`ShardedSplit.train_batches`), a function of ``(seed, epoch)``
only, so a resumed run replays it exactly:

1. every shard is cut into chunks of ``chunk_rows`` consecutive rows, and the chunks of
   all shards are permuted together (shuffling across shards; each chunk is one
   positioned read, so the cache is read at disk speed);
2. the permuted chunks are taken ``buffer_chunks`` at a time into a buffer whose rows are
   permuted again (shuffling within the buffer);
3. the buffers' rows, one after the other, are cut into batches; every batch is full but
   the epoch's last.

Batch ``b`` of an epoch starts at row ``b * batch_size`` of that stream; resuming there
skips the buffers before it without reading them. The next buffer is read on a
background thread while the current one trains.

Under torchrun each rank trains on its own view (:meth:`ShardedSplit.for_rank`): the
epoch's permuted chunk sequence (step 1, the same on every rank) is cut into ``world``
contiguous ranges of exactly ``rows // world`` rows, the chunks at a range's edges
trimmed to it (at most ``world - 1`` rows of the epoch go unused); rank ``r`` reads only
the chunks of rows ``[r * n, (r + 1) * n)`` and takes them through steps 2-3 as above.
Every rank has the same ``len()`` in every epoch, so every rank runs the same number of
steps. A view's labels, statistics and evaluation are the whole split's.

Evaluation (:meth:`eval_chunks`) reads the shards in file order. Memory: two buffers
(``chunk_rows * buffer_chunks`` rows of ``width`` int32 each, 2 x 84 MB at the defaults
and 40 columns) plus, for a scored split, its labels and scores.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ml.data.shard_cache import ShardCache, ShardFile

#: Rows per positioned read (a chunk): ~1-2 MB at 30-50 columns.
CHUNK_ROWS = 8192
#: Chunks per shuffle buffer: 524,288 rows at the defaults.
BUFFER_CHUNKS = 64


class ShardedSplit:
    """One split of a :class:`~ml.data.shard_cache.ShardCache`, read on demand."""

    def __init__(
        self,
        cache: ShardCache,
        name: str,
        device: torch.device,
        *,
        chunk_rows: int = CHUNK_ROWS,
        buffer_chunks: int = BUFFER_CHUNKS,
    ) -> None:
        self.name, self.device = name, device
        self.shards: list[ShardFile] = cache.shards(name)
        info = cache.split(name)
        self.rows = int(info["rows"])
        self.positives = int(info["positives"])
        self.oov = [int(v) for v in info["oov"]]
        self.n_cat = int(cache.manifest["n_cat"])
        self.n_num = int(cache.manifest["n_num"])
        self.chunk_rows, self.buffer_chunks = chunk_rows, buffer_chunks
        self._y: torch.Tensor | None = None
        #: ``(rank, world)`` of a per-rank view (:meth:`for_rank`), None for the whole split
        self.part: tuple[int, int] | None = None

    def __len__(self) -> int:
        """The rows an epoch trains on: the split's, or a view's ``rows // world``."""
        return self.rows if self.part is None else self.rows // self.part[1]

    def for_rank(self, rank: int, world: int) -> ShardedSplit:
        """Rank ``rank`` of ``world``'s view: each epoch, its own contiguous range of
        ``rows // world`` rows of the permuted chunk sequence (module doc); the split
        itself when ``world`` is 1."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in a group of {world}")
        if world == 1:
            return self
        view = copy.copy(self)
        view.part = (rank, world)
        return view

    def unpack(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(cat ids, numerics, labels)`` views of packed ``rows`` (no copy)."""
        cat = rows[:, : self.n_cat]
        num = rows[:, self.n_cat : self.n_cat + self.n_num].view(torch.float32)
        return cat, num, rows[:, -1].view(torch.float32)

    def label_mean(self) -> float:
        return self.positives / max(self.rows, 1)

    def oov_share(self) -> list[float]:
        """Per categorical column, the share of rows encoded as the OOV id 0."""
        return [z / max(self.rows, 1) for z in self.oov]

    @property
    def y(self) -> torch.Tensor:
        """The labels (float32, on the host), read once."""
        if self._y is None:
            y = np.empty(self.rows, dtype=np.float32)  # filled in place: no list of parts
            lo = 0
            for c in self._file_order(1 << 16):
                y[lo : lo + len(c)] = c[:, -1].view(np.float32)
                lo += len(c)
            self._y = torch.from_numpy(y)
        return self._y

    # --- reading ----------------------------------------------------------------------

    def _file_order(self, rows: int) -> Iterator[npt.NDArray[np.int32]]:
        for shard in self.shards:
            for lo in range(0, shard.rows, rows):
                yield shard.read(lo, min(lo + rows, shard.rows))

    def eval_chunks(self, rows: int) -> Iterator[torch.Tensor]:
        """The split's packed rows in file order, ``rows`` at a time, on the device."""
        for c in self._file_order(rows):
            yield torch.from_numpy(c).to(self.device)

    def _chunks(self, seed: int, epoch: int) -> list[tuple[int, int, int]]:
        """``(shard, lo, hi)`` of every chunk, permuted for ``(seed, epoch)`` (a view's:
        those of its range, trimmed to it)."""
        chunks = [
            (i, lo, min(lo + self.chunk_rows, s.rows))
            for i, s in enumerate(self.shards)
            for lo in range(0, s.rows, self.chunk_rows)
        ]
        order = np.random.default_rng([seed, epoch, 1]).permutation(len(chunks))
        permuted = [chunks[k] for k in order]
        if self.part is None:
            return permuted
        rank, world = self.part
        n = self.rows // world
        first, end = rank * n, (rank + 1) * n  # this rank's rows of the permuted sequence
        mine: list[tuple[int, int, int]] = []
        at = 0
        for i, lo, hi in permuted:
            a, b = max(first - at, 0), min(end - at, hi - lo)
            if a < b:
                mine.append((i, lo + a, lo + b))  # trimmed at the range's edges
            at += hi - lo
            if at >= end:
                break
        return mine

    def _buffer(
        self, chunks: list[tuple[int, int, int]], seed: int, epoch: int, index: int
    ) -> npt.NDArray[np.int32]:
        rows = np.concatenate([self.shards[i].read(lo, hi) for i, lo, hi in chunks])
        # a view's rank joins the seed: the ranks' buffers are shuffled independently
        key = [seed, epoch, 2, index] + ([] if self.part is None else [self.part[0]])
        perm = np.random.default_rng(key).permutation(len(rows))
        shuffled: npt.NDArray[np.int32] = rows[perm]
        return shuffled

    def train_batches(
        self, batch_size: int, *, seed: int, epoch: int, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(cat, num, y)`` batches of one epoch in its seeded order, from ``start_batch``."""
        chunks = self._chunks(seed, epoch)
        step = self.buffer_chunks
        groups = [chunks[k : k + step] for k in range(0, len(chunks), step)]
        sizes = [sum(hi - lo for _, lo, hi in g) for g in groups]
        skip = start_batch * batch_size  # rows of the stream already trained on
        first = 0
        while first < len(groups) and skip >= sizes[first]:
            skip -= sizes[first]
            first += 1
        carry: torch.Tensor | None = None
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future[Any] | None = None
            if first < len(groups):
                pending = pool.submit(self._buffer, groups[first], seed, epoch, first)
            for index in range(first, len(groups)):
                assert pending is not None
                buffer = pending.result()
                pending = None
                if index + 1 < len(groups):
                    pending = pool.submit(self._buffer, groups[index + 1], seed, epoch, index + 1)
                rows = torch.from_numpy(buffer).to(self.device)
                if index == first and skip:
                    rows = rows[skip:]
                if carry is not None:
                    rows = torch.cat([carry, rows])
                    carry = None
                full = len(rows) - len(rows) % batch_size
                for lo in range(0, full, batch_size):
                    yield self._parts(rows[lo : lo + batch_size])
                if full < len(rows):
                    carry = rows[full:]
        if carry is not None and len(carry):
            yield self._parts(carry)

    def _parts(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cat, num, y = self.unpack(rows)
        return cat.contiguous(), num.contiguous(), y.contiguous()
