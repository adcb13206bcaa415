"""The shipped ONNX models, their manifest and model cards: package data
(`colorize_backend.models` in the wheel)."""
