"""The models: shared layers, the memory module, the co-memory network and MNAD."""
from comemory.model.memory import Memory, MemoryRead
from comemory.model.network import CoMemoryNet, MNADNet, ModelOutput, build_model

__all__ = ["CoMemoryNet", "MNADNet", "Memory", "MemoryRead", "ModelOutput", "build_model"]
