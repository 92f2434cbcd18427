"""Tests of stepkit.engine."""
