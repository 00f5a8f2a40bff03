"""The memory module against small examples computed by hand (eq. 3.6-3.10, 3.13-3.15)."""
import math

import pytest
import torch

from comemory.model import Memory


def memory_with(items: list[list[float]], margin: float = 1.0) -> Memory:
    memory = Memory(len(items), len(items[0]), margin)
    memory.items = torch.tensor(items)
    return memory


def test_read_is_softmax_weighted_sum_of_items():
    memory = memory_with([[1.0, 0.0], [0.0, 1.0]])
    read = memory.read(torch.tensor([[0.6, 0.8]]))
    w1, w2 = math.exp(0.6), math.exp(0.8)
    expected = torch.tensor([[w1, w2]]) / (w1 + w2)  # w1 * p1 + w2 * p2
    torch.testing.assert_close(read.features, expected)


def test_compactness_and_separateness_values():
    memory = memory_with([[1.0, 0.0], [0.0, 1.0]], margin=1.0)
    read = memory.read(torch.tensor([[0.6, 0.8], [1.0, 0.0]]))
    # query 1: nearest p2 at sqrt(0.4), second p1 at sqrt(0.8); query 2: on p1, p2 at sqrt(2)
    compact = (math.sqrt(0.4) + 0.0) / 2
    separate = (max(0.0, math.sqrt(0.4) - math.sqrt(0.8) + 1) + max(0.0, 0 - math.sqrt(2) + 1)) / 2
    assert read.compactness.item() == pytest.approx(compact, abs=1e-6)
    assert read.separateness.item() == pytest.approx(separate, abs=1e-6)


def test_update_normalises_by_the_items_own_max():
    memory = memory_with([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    q_a = [0.8, 0.6]  # nearest p1; also the query most similar to p2
    q_b = [-0.96, 0.28]  # nearest p2, but less similar to p2 than q_a is
    memory.update(torch.tensor([q_a, q_b]))
    # p1 owns q_a alone: its weight is v/v = 1 -> p1 + q_a, normalised
    p1 = torch.tensor([1.8, 0.6]) / math.hypot(1.8, 0.6)
    # p2 owns q_b alone: eq. 3.9 divides by the max over p2's OWN queries, so the weight
    # is 1 (MNAD's max over all queries would give exp(0.28 - 0.6)): p2 + q_b = (-0.96, 1.28)
    p2 = torch.tensor([-0.6, 0.8])
    p3 = torch.tensor([0.0, -1.0])  # owns no query: unchanged
    torch.testing.assert_close(memory.items, torch.stack([p1, p2, p3]))


def test_update_sums_several_owned_queries_with_max_normalised_weights():
    memory = memory_with([[1.0, 0.0], [0.0, 1.0]])
    queries = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    memory.update(queries)
    # p1 owns queries 0 and 1; v over queries for p1 is softmax of (1, 0.8, 0)
    v = torch.softmax(torch.tensor([1.0, 0.8, 0.0]), dim=0)
    raw = torch.tensor([1.0, 0.0]) + (v[0] / v[0]) * queries[0] + (v[1] / v[0]) * queries[1]
    torch.testing.assert_close(memory.items[0], raw / raw.norm())
    torch.testing.assert_close(memory.items[1], torch.tensor([0.0, 1.0]))


def test_forward_updates_in_training_only():
    torch.manual_seed(0)
    memory = Memory(4, 8)
    queries = torch.nn.functional.normalize(torch.randn(2, 8, 3, 3), dim=1)
    before = memory.items.clone()
    memory.eval()
    memory(queries)
    torch.testing.assert_close(memory.items, before)
    memory.train()
    memory(queries)
    assert not torch.allclose(memory.items, before)
    torch.testing.assert_close(memory.items.norm(dim=1), torch.ones(4))


def test_items_are_buffers_not_parameters():
    memory = Memory(3, 4)
    assert list(memory.parameters()) == []
    assert "items" in memory.state_dict()


def test_memory_needs_an_item():
    with pytest.raises(ValueError, match="at least one item"):
        Memory(0, 4)
