"""Shapes through both branches for every variant, gradients, memory behaviour, and MNAD."""
import pytest
import torch

from comemory.config import ModelConfig
from comemory.errors import ConfigError
from comemory.model import CoMemoryNet, MNADNet, build_model
from comemory.train.loop import training_losses
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
    past = torch.rand(2, 2, config.channels, config.image_size, config.image_size) * 2 - 1
    out = model(past)
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
    frames = torch.rand(2, 3, 1, size, size) * 2 - 1
    out = model(frames[:, :2])
    flow = torch.randn(2, 2, size, size)
    training_losses(out, flow, frames[:, 2], config.train)["total"].backward()
    for part in ("motion_encoder", "appearance_encoder", "motion_decoder", "appearance_decoder"):
        grads = [p.grad for p in getattr(model, part).parameters()]
        assert all(g is not None for g in grads), part
        assert sum(g.abs().sum().item() for g in grads) > 0, part


def test_memories_change_in_training_and_not_in_evaluation():
    config = small_config()
    model = CoMemoryNet(config.model)
    frames = torch.rand(2, 2, 1, 64, 64) * 2 - 1

    def items():
        return [model.motion_head.memory.items.clone(), model.appearance_head.memory.items.clone()]

    before = items()
    model.eval()
    with torch.no_grad():
        model(frames)
    for old, new in zip(before, items()):
        torch.testing.assert_close(old, new)
    model.train()
    model(frames)
    for old, new in zip(before, items()):
        assert not torch.allclose(old, new)


def test_query_map_is_unit_norm():
    model = CoMemoryNet(VARIANTS["colour"])
    query, skips = model.appearance_encoder(torch.randn(2, 3, 32, 32))
    assert query.shape == (2, 64, 4, 4)
    torch.testing.assert_close(query.norm(dim=1), torch.ones(2, 4, 4))
    assert [s.shape[1] for s in skips] == [8, 16, 32]


def test_mnad_predicts_the_next_frame_from_four_without_flow():
    config = ModelConfig(image_size=32, channels=1, width=0.125, architecture="mnad")
    model = build_model(config)
    assert isinstance(model, MNADNet) and model.past_frames == 4
    past = torch.rand(3, 4, 1, 32, 32) * 2 - 1
    out = model(past)
    assert out.flow is None and out.frame.shape == (3, 1, 32, 32)
    assert out.feature_distance.shape == (3,) and (out.feature_distance >= 0).all()
    assert set(out.memory_losses) == {"app_compact", "app_separate"}
    losses = training_losses(out, torch.zeros(3, 2, 32, 32), past[:, -1], small_config().train)
    assert "flow" not in losses
    losses["total"].backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_mnad_sees_all_four_frames():
    model = build_model(ModelConfig(image_size=32, channels=1, width=0.125,
                                    architecture="mnad")).eval()
    past = torch.rand(1, 4, 1, 32, 32)
    changed = past.clone()
    changed[:, 0] = 0.0  # only the oldest frame differs
    with torch.no_grad():
        assert not torch.allclose(model(past).frame, model(changed).frame)


def test_unknown_architecture_is_a_config_error():
    with pytest.raises(ConfigError, match="model.architecture must be one of"):
        build_model(ModelConfig(architecture="transformer"))
