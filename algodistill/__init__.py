"""algodistill: distill algorithmic skill into a small code model and see, cell by cell, what it learned."""

__version__ = "0.1.0"
