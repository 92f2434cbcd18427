"""Tests of stepkit.durable."""
