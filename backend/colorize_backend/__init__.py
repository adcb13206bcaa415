"""Colorization backend: ONNX engine, ZeroMQ daemon, colour math and CLI."""

__version__ = "0.2.0"
