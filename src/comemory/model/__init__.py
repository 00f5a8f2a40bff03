"""The co-memory network: layers, memory module, and the two-branch model."""
from comemory.model.memory import Memory, MemoryRead
from comemory.model.network import CoMemoryNet, CoMemoryOutput

__all__ = ["CoMemoryNet", "CoMemoryOutput", "Memory", "MemoryRead"]
