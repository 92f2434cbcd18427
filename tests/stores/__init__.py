"""Tests of stepkit.stores: the contract suite, concurrency and backend specifics."""
