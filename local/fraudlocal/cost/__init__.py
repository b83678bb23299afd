"""The cost model: the monthly AWS bill from the code's own figures and a dated price file."""

from .model import CostError, Estimate, estimate, load_prices, render_text

__all__ = ["CostError", "Estimate", "estimate", "load_prices", "render_text"]
