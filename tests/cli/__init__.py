"""Tests of stepkit.cli."""
