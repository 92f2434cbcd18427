"""The immutable pipeline builder and its plan: nodes, items, policies, paths, Mermaid."""
