"""Fetcher: batched Polygon requests into Redis, split-adjusted panels streamed by chunk."""
