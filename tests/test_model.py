"""Shapes through both branches for every variant, gradients, and memory behaviour."""
import pytest
import torch

from comemory.config import ModelConfig
from comemory.model import CoMemoryNet
from comemory.training import training_losses
from tests.conftest import small_config

VARIANTS = {
    "co-memory grey": ModelConfig(image_size=32, channels=1, width=0.125),
    "colour": ModelConfig(image_size=32, channels=3, width=0.125),
    "w/o motion memory": ModelConfig(image_size=32, channels=1, width=0.125, motion_memory=0),
    "w/o any memory": ModelConfig(image_size=32, channels=1, width=0.125, motion_memory=0,
                                  appearance_memory=0),
    "memory 15, wider, 48px": ModelConfig(image_size=48, channels=1, width=0.25,
                                          appearance_memory=15, motion_memory=15),
}


@pytest.mark.parametrize("config", VARIANTS.values(), ids=VARIANTS.keys())
def test_output_shapes(config):
    model = CoMemoryNet(config)
    frames = torch.rand(2, config.channels, config.image_size, config.image_size) * 2 - 1
    out = model(frames, frames)
    size = config.image_size
    assert out.flow.shape == (2, 2, size, size)
    assert out.frame.shape == (2, config.channels, size, size)
    assert out.frame.abs().max() <= 1.0  # tanh output in [-1, 1]
    expected_losses = set()
    if config.motion_memory:
        expected_losses |= {"motion_compact", "motion_separate"}
    if config.appearance_memory:
        expected_losses |= {"app_compact", "app_separate"}
    assert set(out.memory_losses) == expected_losses


def test_memory_sizes_and_query_width_follow_the_config():
    model = CoMemoryNet(VARIANTS["memory 15, wider, 48px"])
    assert model.motion_head.memory.items.shape == (15, 128)  # 512 * 0.25
    assert model.appearance_head.memory.items.shape == (15, 128)
    assert CoMemoryNet(VARIANTS["w/o motion memory"]).motion_head.memory is None


def test_gradients_reach_both_encoders_and_decoders():
    config = small_config()
    model = CoMemoryNet(config.model)
    size = config.model.image_size
    frames = torch.rand(3, 2, 1, size, size) * 2 - 1
    out = model(frames[0], frames[1])
    flow = torch.randn(2, 2, size, size)
    training_losses(out, flow, frames[2], config.train)["total"].backward()
    for part in ("motion_encoder", "appearance_encoder", "motion_decoder", "appearance_decoder"):
        grads = [p.grad for p in getattr(model, part).parameters()]
        assert all(g is not None for g in grads), part
        assert sum(g.abs().sum().item() for g in grads) > 0, part


def test_memories_change_in_training_and_not_in_evaluation():
    config = small_config()
    model = CoMemoryNet(config.model)
    frames = torch.rand(2, 1, 64, 64) * 2 - 1
    def items():
        return [model.motion_head.memory.items.clone(), model.appearance_head.memory.items.clone()]

    before = items()
    model.eval()
    with torch.no_grad():
        model(frames, frames)
    for old, new in zip(before, items()):
        torch.testing.assert_close(old, new)
    model.train()
    model(frames, frames)
    for old, new in zip(before, items()):
        assert not torch.allclose(old, new)


def test_query_map_is_unit_norm():
    model = CoMemoryNet(VARIANTS["colour"])
    query, skips = model.appearance_encoder(torch.randn(2, 3, 32, 32))
    assert query.shape == (2, 64, 4, 4)
    torch.testing.assert_close(query.norm(dim=1), torch.ones(2, 4, 4))
    assert [s.shape[1] for s in skips] == [8, 16, 32]
