"""rram-hil core: the bench (bench file -> instruments -> roles), data types and algorithms."""
from .bench import Bench, BenchConnectionError, open_bench
from .roles import LimitError, Limits

__all__ = ["open_bench", "Bench", "Limits", "LimitError", "BenchConnectionError"]
