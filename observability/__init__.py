"""Logging, metrics, tracing and profiling for the shop (see issue 3)."""
