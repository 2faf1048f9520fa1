"""The order a post-training stage visits its examples: ``superlab.train.order.Order``."""

from superlab.train.order import Order

__all__ = ["Order"]
