"""Graphs: building and validating them, and running them through run() and arun().

Resuming, step limits, routing errors and durable graph runs are in
tests/graph/test_graph_resume.py.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from support import Recorder

from stepkit import (
    END,
    START,
    Graph,
    GraphRoutingError,
    InvalidArgumentError,
    Pipeline,
    PipelineDefinitionError,
    StepFailedError,
)


def bump(ctx):
    return {"n": ctx.get("n", 0) + 1}


def mark(name):
    def step(ctx):
        return {"trail": (*ctx.get("trail", ()), name)}

    return step


def chain(*names, graph=None):
    """A graph running ``names`` in order, added in reverse (edges decide the order)."""
    g = graph or Graph("chain")
    for name in reversed(names):
        g = g.add_node(name, mark(name))
    g = g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g = g.add_edge(a, b)
    return g.add_edge(names[-1], END)


def counter(limit=3, **options):
    """bump, looping back to itself until n reaches ``limit``."""
    return (
        Graph("counter", **options)
        .add_node("bump", bump)
        .add_edge(START, "bump")
        .add_conditional_edges(
            "bump",
            lambda ctx: "again" if ctx["n"] < limit else "done",
            {"again": "bump", "done": END},
        )
    )


class TestBuilding:
    def test_builder_is_immutable(self):
        """Every builder call returns a new graph; the original is unchanged."""
        base = Graph("g").add_node("a", bump)
        extended = base.add_node("b", bump)
        assert base.describe() == ["a"]
        assert extended.describe() == ["a", "b"]
        with pytest.raises(AttributeError):
            base.name = "x"  # type: ignore[misc]

    def test_extending_an_older_graph_branches_off(self):
        """Two graphs extended from one base do not see each other's nodes."""
        base = Graph("g").add_node("a", bump)
        left = base.add_node("b", bump)
        right = base.add_node("c", bump)
        assert left.describe() == ["a", "b"]
        assert right.describe() == ["a", "c"]
        assert right.add_node("b", bump).describe() == ["a", "c", "b"]

    def test_describe_lists_nodes_and_repr_names_them(self):
        """describe() lists the node names in the order they were added."""
        g = chain("x", "y")
        assert g.describe() == ["y", "x"]
        assert "nodes=['y', 'x']" in repr(g)

    def test_node_named_after_its_function_or_pipeline(self):
        """add_node(fn) and add_node(pipeline) take the name of the function or pipeline."""
        inner = Pipeline("inner").step("s", bump)
        g = Graph("g").add_node(bump).add_node(inner)
        assert g.describe() == ["bump", "inner"]

    def test_lambda_node_needs_a_name(self):
        """A lambda has no name for edges to use: add_node(lambda) says to name it."""
        with pytest.raises(PipelineDefinitionError, match="name the node"):
            Graph("g").add_node(lambda ctx: None)

    def test_start_and_end_are_sentinels(self):
        """Nodes named "start" and "end" are ordinary nodes, apart from START and END."""
        g = chain("start", "end")
        assert g.run().get("trail") == ("start", "end")
        assert repr(START) == "START"
        assert str(END) == "END"

    def test_when_is_not_a_node_option(self):
        """add_node() has no when=: routing belongs to edges (a TypeError, and a mypy error)."""
        with pytest.raises(TypeError):
            Graph("g").add_node("a", bump, when=False)  # type: ignore[call-arg]

    def test_step_options_are_checked_at_build(self):
        """Node options are validated when the node is added."""
        with pytest.raises(PipelineDefinitionError, match="retries="):
            Graph("g").add_node("a", bump, retries=-1)
        with pytest.raises(PipelineDefinitionError, match="apply to step functions"):
            Graph("g").add_node("a", Pipeline("p").step("s", bump), retries=2)

    @pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3"])
    def test_max_steps_below_one_is_refused(self, bad):
        """max_steps < 1 (or not an int) is an InvalidArgumentError; 0 never means 'default'."""
        with pytest.raises(InvalidArgumentError, match="max_steps"):
            Graph("g", max_steps=bad)

    def test_default_max_steps(self):
        """Without max_steps= a graph may run 100 node executions."""
        assert Graph("g").max_steps == 100


class TestValidation:
    def test_duplicate_node(self):
        """Two nodes with one name: a PipelineDefinitionError at once."""
        with pytest.raises(PipelineDefinitionError, match="already has a node named 'a'"):
            Graph("g").add_node("a", bump).add_node("a", bump)

    @pytest.mark.parametrize("call", ["node", "edge", "cond"])
    def test_slash_in_names(self, call):
        """'/' separates step paths: node names and edge ends may not hold it."""
        calls = {
            "node": lambda g: g.add_node("a/b", bump),
            "edge": lambda g: g.add_edge("a/b", END),
            "cond": lambda g: g.add_conditional_edges("a/b", bump, {"x": END}),
        }
        with pytest.raises(PipelineDefinitionError, match="'/'"):
            calls[call](Graph("g"))

    def test_two_unconditional_out_edges(self):
        """A node left by two plain edges is ambiguous: the message says to use a selector."""
        g = Graph("g").add_node("a", bump).add_node("b", bump).add_edge("a", "b")
        with pytest.raises(PipelineDefinitionError, match=r"already has an edge to 'b'.*path_map"):
            g.add_edge("a", END)

    def test_edge_plus_conditional_edges(self):
        """An edge and conditional edges from one node are refused, in either order."""
        g = Graph("g").add_node("a", bump)
        with pytest.raises(PipelineDefinitionError, match="already has an edge"):
            g.add_edge("a", END).add_conditional_edges("a", bump, {"x": END})
        with pytest.raises(PipelineDefinitionError, match="already has conditional edges"):
            g.add_conditional_edges("a", bump, {"x": END}).add_edge("a", END)

    def test_two_entry_points(self):
        """A graph starts at one node."""
        g = Graph("g").add_node("a", bump).add_node("b", bump).set_entry_point("a")
        with pytest.raises(PipelineDefinitionError, match="already has an entry point"):
            g.add_edge(START, "b")

    def test_misplaced_sentinels(self):
        """No edge leaves END and none goes to START; START takes no conditional edges."""
        g = Graph("g").add_node("a", bump)
        with pytest.raises(PipelineDefinitionError, match="END is where the run finishes"):
            g.add_edge(END, "a")  # type: ignore[arg-type]
        with pytest.raises(PipelineDefinitionError, match="START is where the graph begins"):
            g.add_edge("a", START)  # type: ignore[arg-type]
        with pytest.raises(PipelineDefinitionError, match="one entry node"):
            g.add_conditional_edges(START, bump, {"x": "a"})  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("selector", "path_map", "message"),
        [
            (None, {"x": END}, "selector must be a callable"),
            (bump, {}, "non-empty mapping"),
            (bump, ["a"], "non-empty mapping"),
            (bump, {1: "a"}, "must be str"),
            (bump, {"x": 3}, "a node name or END"),
        ],
    )
    def test_bad_conditional_edges(self, selector, path_map, message):
        """A selector that is not callable, or a malformed path_map, is refused at the call."""
        with pytest.raises(PipelineDefinitionError, match=message):
            Graph("g").add_node("a", bump).add_conditional_edges("a", selector, path_map)

    def test_no_nodes(self):
        """An empty graph cannot run."""
        with pytest.raises(PipelineDefinitionError, match="has no nodes"):
            Graph("g").validate()

    def test_no_entry_point(self):
        """validate() (and the first run) name the missing entry point and how to set it."""
        g = Graph("g").add_node("a", bump).add_edge("a", END)
        with pytest.raises(PipelineDefinitionError, match="no entry point; set_entry_point"):
            g.validate()
        with pytest.raises(PipelineDefinitionError, match="no entry point"):
            g.run()

    def test_unknown_nodes(self):
        """Edges to or from a node that does not exist, and path_map values, are named."""
        g = Graph("g").add_node("a", bump).set_entry_point("a")
        with pytest.raises(PipelineDefinitionError, match="goes to 'b', which is not a node"):
            g.add_edge("a", "b").validate()
        with pytest.raises(PipelineDefinitionError, match="leaves 'z', which is not a node"):
            g.add_edge("a", END).add_edge("z", END).validate()
        with pytest.raises(PipelineDefinitionError, match=r"path_map\['no'\] of node 'a'"):
            g.add_conditional_edges("a", bump, {"yes": END, "no": "b"}).validate()
        with pytest.raises(PipelineDefinitionError, match="entry edge"):
            Graph("g").add_node("a", bump).add_edge("a", END).set_entry_point("b").validate()

    def test_node_without_outgoing_edge(self):
        """Every node says where the run goes next (no silent end)."""
        g = Graph("g").add_node("a", bump).add_node("b", bump).set_entry_point("a")
        with pytest.raises(PipelineDefinitionError, match="'b' have no outgoing edge"):
            g.add_edge("a", "b").validate()

    def test_unreachable_node(self):
        """A node no edge leads to is refused."""
        g = chain("a").add_node("orphan", bump).add_edge("orphan", END)
        with pytest.raises(PipelineDefinitionError, match="'orphan' cannot be reached"):
            g.validate()

    def test_loop_without_exit(self):
        """A loop from which END cannot be reached is refused; a loop with an exit is fine."""
        g = (
            Graph("g")
            .add_node("a", bump)
            .add_node("b", bump)
            .add_edge(START, "a")
            .add_conditional_edges("a", bump, {"x": "b", "y": END})
            .add_edge("b", "b")
        )
        with pytest.raises(PipelineDefinitionError, match="'b' the run can never reach END"):
            g.validate()
        assert counter().validate().describe() == ["bump"]

    def test_cycles_are_allowed(self):
        """Seed failure mode absent: cycles are not rejected."""
        result = counter(limit=5).run({"n": 0})
        assert result == {"n": 5}


class TestFingerprint:
    def test_same_structure_same_fingerprint(self):
        """Two graphs built alike share a fingerprint (the code is not part of it)."""
        assert chain("a", "b").fingerprint == chain("a", "b").fingerprint

    def test_fingerprint_covers_edges_path_maps_and_entry(self):
        """Changing an edge, a path map or the entry point changes the fingerprint."""

        def two(entry="a", last="b", keys=("x",)):
            g = Graph("g").add_node("a", bump).add_node("b", bump).set_entry_point(entry)
            g = g.add_conditional_edges("a", bump, {k: "b" for k in keys} | {"end": END})
            return g.add_edge("b", END if last == "b" else "a")

        base = two().fingerprint
        assert two(keys=("y",)).fingerprint != base
        assert two(last="a").fingerprint != base
        assert two(entry="b", last="a").fingerprint != two(last="a").fingerprint
        assert chain("a", "b").fingerprint != chain("b", "a").fingerprint

    def test_graph_and_pipeline_fingerprints_differ(self):
        """A pipeline and a graph of the same nodes have different fingerprints."""
        pipeline = Pipeline("chain").step("a", mark("a"))
        assert chain("a").fingerprint != pipeline.fingerprint


class TestMermaid:
    def test_conditional_edges_are_labelled(self):
        """to_mermaid() draws START, END, plain edges and one labelled edge per key."""
        text = counter().to_mermaid()
        assert text.startswith("flowchart TD\n")
        assert 'n1 -->|"again"| n1' in text
        assert 'n1 -->|"done"| done' in text
        assert "start --> n1" in text

    def test_nested_pipeline_node_is_a_subgraph(self):
        """A nested pipeline node is drawn as a subgraph; edges leave from its last step."""
        inner = Pipeline("inner").step("x", bump).step("y", bump)
        g = Graph("g").add_node("sub", inner).set_entry_point("sub").add_edge("sub", END)
        text = g.to_mermaid()
        assert "subgraph" in text
        assert '"x"' in text
        assert "--> done" in text


class TestRunning:
    def test_nodes_run_in_edge_order(self, runner):
        """The edges decide the order, not the order nodes were added."""
        result = runner.run(chain("a", "b", "c"))
        assert result["trail"] == ("a", "b", "c")
        assert result.status == "completed"
        assert [s.name for s in result.steps] == ["a", "b", "c"]

    def test_every_conditional_route_is_followed(self, runner):
        """Seed failure mode absent: the selector's key is followed, not the first edge."""
        g = (
            Graph("route")
            .add_node("pick", lambda ctx: None)
            .add_node("left", mark("left"))
            .add_node("right", mark("right"))
            .set_entry_point("pick")
            .add_conditional_edges("pick", lambda ctx: ctx["go"], {"l": "left", "r": "right"})
            .add_edge("left", END)
            .add_edge("right", END)
        )
        assert runner.run(g, {"go": "r"})["trail"] == ("right",)
        assert runner.run(g, {"go": "l"})["trail"] == ("left",)

    def test_unmapped_route_is_an_error_not_completed(self, runner):
        """Seed failure mode absent: a key outside the path map raises, naming node and keys."""
        with pytest.raises(GraphRoutingError) as info:
            runner.run(
                Graph("bad")
                .add_node("a", bump)
                .set_entry_point("a")
                .add_conditional_edges("a", lambda ctx: "maybe", {"yes": END, "no": "a"})
            )
        err = info.value
        assert err.node == "a"
        assert err.key == "maybe"
        assert err.allowed == ("yes", "no")
        assert "'maybe'" in str(err)
        assert "'yes', 'no'" in str(err)
        assert err.checkpoint is not None

    def test_none_from_a_selector_is_a_routing_error(self, runner):
        """None is not a route: GraphRoutingError (a graph has no 'skip')."""
        g = (
            Graph("g")
            .add_node("a", bump)
            .set_entry_point("a")
            .add_conditional_edges("a", lambda ctx: None, {"x": END})
        )
        with pytest.raises(GraphRoutingError, match="returned None"):
            runner.run(g)

    def test_selector_exception_is_chained(self, runner):
        """A selector that raises: GraphRoutingError with the exception as __cause__."""

        def broken(ctx):
            raise KeyError("approved")

        g = Graph("g").add_node("a", bump).set_entry_point("a")
        g = g.add_conditional_edges("a", broken, {"x": END})
        with pytest.raises(GraphRoutingError, match="raised KeyError") as info:
            runner.run(g)
        assert isinstance(info.value.__cause__, KeyError)

    def test_async_nodes_and_selectors(self, runner):
        """Nodes and selectors may be async, under run() and arun()."""

        async def abump(ctx):
            await asyncio.sleep(0)
            return {"n": ctx["n"] + 1}

        async def again(ctx):
            return "again" if ctx["n"] < 4 else "done"

        g = (
            Graph("async")
            .add_node("bump", abump)
            .set_entry_point("bump")
            .add_conditional_edges("bump", again, {"again": "bump", "done": END})
        )
        assert runner.run(g, {"n": 0}) == {"n": 4}

    def test_events_repeat_node_names_in_loops(self, runner):
        """Every node execution fires an event named after the node; loops repeat it."""
        recorder = Recorder()
        runner.run(counter(limit=3), {"n": 0}, on_step_complete=recorder)
        assert [e.step_name for e in recorder.events] == ["bump"] * 3
        assert [e.context["n"] for e in recorder.events] == [1, 2, 3]

    def test_nested_pipeline_node(self, runner):
        """A nested pipeline node: inner steps named node/inner, their events first."""
        inner = Pipeline("inner").step("x", mark("x")).step("y", mark("y"))
        g = (
            Graph("g")
            .add_node("sub", inner)
            .add_node("a", mark("a"))
            .set_entry_point("a")
            .add_edge("a", "sub")
            .add_edge("sub", END)
        )
        recorder = Recorder()
        result = runner.run(g, on_step_complete=recorder)
        assert result["trail"] == ("a", "x", "y")
        assert [e.step_name for e in recorder.events] == ["a", "sub/x", "sub/y", "sub"]

    def test_parallel_node(self, runner):
        """Several items in one node run in parallel and merge in argument order."""
        g = (
            Graph("g")
            .add_node("both", lambda ctx: {"a": 1}, lambda ctx: {"b": 2})
            .set_entry_point("both")
            .add_edge("both", END)
        )
        assert runner.run(g) == {"a": 1, "b": 2}

    def test_retries_on_a_node(self, runner):
        """Step options apply to nodes: retries= retries a failing node."""
        calls = []

        def flaky(ctx):
            calls.append(1)
            if len(calls) < 3:
                raise ValueError("not yet")
            return {"ok": True}

        g = Graph("g").add_node("flaky", flaky, retries=2).set_entry_point("flaky")
        assert runner.run(g.add_edge("flaky", END)) == {"ok": True}

    def test_failing_node_raises_with_a_checkpoint(self, runner):
        """A node that fails raises StepFailedError carrying the checkpoint after the last node."""

        def fail(ctx):
            raise RuntimeError("boom")

        g = (
            Graph("g")
            .add_node("a", mark("a"))
            .add_node("bad", fail)
            .set_entry_point("a")
            .add_edge("a", "bad")
            .add_edge("bad", END)
        )
        with pytest.raises(StepFailedError) as info:
            runner.run(g)
        assert info.value.step_name == "bad"
        assert info.value.checkpoint is not None

    def test_on_error_continue_routes_on_and_skip_remaining_ends(self, runner):
        """on_error='continue' leaves the node by its edge; 'skip_remaining' ends the graph."""

        def fail(ctx):
            raise RuntimeError("boom")

        def graph(mode):
            return (
                Graph("g")
                .add_node("bad", fail, on_error=mode)
                .add_node("after", mark("after"))
                .set_entry_point("bad")
                .add_edge("bad", "after")
                .add_edge("after", END)
            )

        assert runner.run(graph("continue"))["trail"] == ("after",)
        assert "trail" not in runner.run(graph("skip_remaining"))

    def test_graph_options_apply(self, runner):
        """Graph-level hooks and step defaults apply as Pipeline's do."""
        seen = []
        g = chain("a", "b", graph=Graph("g", on_step_complete=lambda e: seen.append(e.step_name)))
        runner.run(g)
        assert seen == ["a", "b"]

    def test_max_steps_equal_to_node_count_completes(self, runner):
        """Seed failure mode absent (off by one): N nodes complete with max_steps=N."""
        g = chain("a", "b", "c", graph=Graph("g", max_steps=3))
        assert runner.run(g)["trail"] == ("a", "b", "c")
        assert runner.run(counter(limit=4, max_steps=4), {"n": 0}) == {"n": 4}


def test_graph_option_errors_name_the_graph():
    """A bad graph option says Graph('name'), not Pipeline('name')."""
    from stepkit import PipelineDefinitionError

    with pytest.raises(PipelineDefinitionError, match=r"Graph\('g'\): retries="):
        Graph("g", retries=-1)
    with pytest.raises(PipelineDefinitionError, match=r"a signed graph needs a name"):
        Graph(secret="0123456789abcdef0123")


def test_graph_options_and_hooks_can_be_replaced(runner):
    """with_options/with_hooks/without_hooks return a new graph with the same nodes and edges."""
    seen: list[str] = []

    def note(event):
        seen.append(event.step_name)

    g = Graph("g").add_node("a", lambda ctx: {"n": 1}).add_edge(START, "a").add_edge("a", END)
    hooked = g.with_hooks(on_step_complete=note)
    assert runner.run(hooked, {}) == {"n": 1}
    assert seen == ["a"]
    assert runner.run(hooked.without_hooks(note), {}) == {"n": 1}
    assert seen == ["a"]
    assert g.with_options(version="2").version == "2"
    assert g.version is None
    with pytest.raises(TypeError, match="retires"):
        g.with_options(retires=3)  # type: ignore[typeddict-unknown-key]
