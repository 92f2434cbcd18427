"""Tests of stepkit.graph."""
