"""Tests of stepkit.checkpoints."""
