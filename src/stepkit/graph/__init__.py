"""Graphs: nodes and edges (conditional edges, loops with a step limit) compiled onto the engine."""

from stepkit.graph._builder import END, START
from stepkit.graph._graph import Graph

__all__ = ["END", "START", "Graph"]
