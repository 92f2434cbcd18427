"""Tests of stepkit.pipeline."""
