"""Hypothesis: the strategies, and properties of the model, the parsers and deadline scenarios."""
