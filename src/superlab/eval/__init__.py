"""Evaluation of a checkpoint: held-out loss, perplexity and bits per byte.

The shape: an evaluator takes a model and data it reads itself, and returns a
flat dict of named figures; ``stage.run`` collects them into ``eval.json`` with
the checkpoint's identity (step and weights hash) so results are comparable.
"""
