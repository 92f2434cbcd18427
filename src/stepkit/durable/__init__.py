"""Durable runs: plain runs wrapped with a store, claims and leases, resume by run id."""
