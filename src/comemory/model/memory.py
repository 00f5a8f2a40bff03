"""The memory of normal patterns (thesis section 3.3), one class for both branches."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MemoryRead:
    """What one read returns.

    features: (B, C, H, W) the items read for each query, p_hat (eq. 3.7).
    compactness: scalar, mean over queries of ||q - p_nearest|| (eq. 3.13), or with
        ``compactness="mse"`` of ||q - p_nearest||^2 / C (MNAD's code).
    separateness: scalar, mean over queries of
        max(0, ||q - p_nearest|| - ||q - p_second|| + margin) (eq. 3.15).
    distance: ||q - p_nearest|| of each query, (B, H, W) from ``forward`` ((K,) from
        ``read``): MNAD's feature-distance score.
    """

    features: torch.Tensor
    compactness: torch.Tensor
    separateness: torch.Tensor
    distance: torch.Tensor


class Memory(nn.Module):
    """N unit-norm items of C dims, read by every query, updated by a rule (never by gradients).

    The thesis sums the losses over queries; we average them so the loss weights do
    not depend on the batch size or the resolution. In training mode, ``forward`` reads
    with the current items, then updates them from the same queries (eq. 3.8-3.10);
    in eval mode the items are frozen.

    Options where MNAD's code differs from the thesis's first reading: ``read="detached"``
    stops gradients through the read weights (the read features then carry none back to
    the queries); ``compactness="mse"`` (its per-query gradient is 1/C of the L2's scale
    times the distance); ``init="uniform"`` starts from non-negative uniform noise.
    """

    def __init__(self, num_items: int, dim: int, margin: float = 1.0, read: str = "attached",
                 compactness: str = "l2", init: str = "normal"):
        super().__init__()
        if num_items < 1:
            raise ValueError(f"a memory needs at least one item, got {num_items}")
        self.margin, self.detach_read, self.compactness = margin, read == "detached", compactness
        noise = torch.rand if init == "uniform" else torch.randn
        self.register_buffer("items", F.normalize(noise(num_items, dim), dim=1))
        # the last read's queries (K, C), kept only while ``keep_queries`` is set: for
        # MNAD's test-time update, which decides after the prediction whether to absorb them
        self.keep_queries, self.last_queries = False, None
        # the queries an update absorbs: this process's own, unless training under torchrun
        # hands over a gather of every process's (``share_updates``)
        self.gather: Callable[[torch.Tensor], torch.Tensor] = _own_queries

    def forward(self, query_map: torch.Tensor) -> MemoryRead:
        """query_map: (B, C, H, W), unit norm over C -> MemoryRead."""
        batch, dim, height, width = query_map.shape
        queries = query_map.to(self.items.dtype).permute(0, 2, 3, 1).reshape(-1, dim)  # (K, C)
        # Items stay float32 under bf16 autocast: the update accumulates small steps.
        with torch.autocast(query_map.device.type, enabled=False):
            result = self.read(queries)
            if self.keep_queries:
                self.last_queries = queries.detach()
            if self.training:
                self.update(self.gather(queries.detach()))
        features = result.features.reshape(batch, height, width, dim).permute(0, 3, 1, 2)
        return MemoryRead(features.to(query_map.dtype), result.compactness, result.separateness,
                          result.distance.reshape(batch, height, width))

    def read(self, queries: torch.Tensor) -> MemoryRead:
        """queries: (K, C) -> MemoryRead with features (K, C)."""
        similarity = queries @ self.items.T  # (K, N): p_n . q_k
        weights = similarity.softmax(dim=1)  # w_n^k, over items (eq. 3.6)
        if self.detach_read:
            weights = weights.detach()
        features = weights @ self.items  # eq. 3.7
        ranked = similarity.topk(min(2, self.items.shape[0]), dim=1).indices
        offset = queries - self.items[ranked[:, 0]]
        to_nearest = torch.linalg.vector_norm(offset, dim=1)
        compactness = (offset.pow(2).mean() if self.compactness == "mse"
                       else to_nearest.mean())
        separateness = torch.zeros_like(compactness)
        if ranked.shape[1] == 2:
            to_second = torch.linalg.vector_norm(queries - self.items[ranked[:, 1]], dim=1)
            separateness = F.relu(to_nearest - to_second + self.margin).mean()
        return MemoryRead(features, compactness, separateness, to_nearest)

    @torch.no_grad()
    def update(self, queries: torch.Tensor) -> None:
        """queries: (K, C). Each item absorbs the queries nearest to it (eq. 3.8-3.10)."""
        similarity = queries @ self.items.T  # (K, N)
        match = similarity.softmax(dim=0)  # v_n^k, over queries (eq. 3.8)
        nearest = similarity.argmax(dim=1)  # U^n = {k : nearest[k] == n}
        owned = match * F.one_hot(nearest, self.items.shape[0]).to(match.dtype)
        # eq. 3.9: divide by the max over the item's OWN queries (MNAD divides by the
        # max over all queries). An item that owns no query keeps its value.
        own_max = owned.max(dim=0).values.clamp_min(torch.finfo(match.dtype).tiny)
        # Rebinding (not copy_) leaves the old items intact for this step's backward pass.
        self.items = F.normalize(self.items + (owned / own_max).T @ queries, dim=1)


def share_updates(model: nn.Module, gather: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Have every memory of ``model`` update from ``gather(queries)``: under torchrun,
    training hands it ``distributed.gather_rows``, so that each process applies the update
    a single process would apply to the whole global batch."""
    for module in model.modules():
        if isinstance(module, Memory):
            module.gather = gather


def _own_queries(queries: torch.Tensor) -> torch.Tensor:
    return queries
