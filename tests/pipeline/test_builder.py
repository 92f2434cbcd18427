"""Building pipelines: immutability, naming and build-time validation."""

from __future__ import annotations

import pytest

from stepkit import Pipeline, PipelineDefinitionError


def inc(ctx):
    return {"a": ctx["a"] + 1}


def test_builder_calls_return_new_pipelines():
    """Every builder call returns a new pipeline and leaves the original unchanged."""
    base = Pipeline("base").step("one", inc)
    extended = base.step("two", inc)
    assert base.describe() == ["one"]
    assert extended.describe() == ["one", "two"]


def test_pipeline_cannot_be_mutated():
    """Attributes of a pipeline cannot be assigned."""
    with pytest.raises(AttributeError, match="immutable"):
        Pipeline("p").name = "q"  # type: ignore[misc]


def test_step_named_from_function():
    """step(fn) takes the function's name; lambdas get step-<position>."""
    p = Pipeline("p").step(inc).step(lambda ctx: None)
    assert p.describe() == ["inc", "step-2"]


def test_nested_pipeline_as_named_step():
    """step(pipeline) is named after the pipeline; its steps are nested paths."""
    inner = Pipeline("inner").step("x", inc)
    assert Pipeline("p").step(inner).step_paths() == ["inner/x", "inner"]


@pytest.mark.parametrize("name", ["", "a/b", 3, None])
def test_bad_step_names_are_rejected(name):
    """Step names are non-empty strs without '/'."""
    with pytest.raises(PipelineDefinitionError):
        Pipeline("p").step(name, inc)


def test_duplicate_names_at_one_level_are_rejected():
    """Names are unique at each level, whatever the kind of node."""
    p = Pipeline("p").step("a", inc)
    with pytest.raises(PipelineDefinitionError, match="already has a step named 'a'"):
        p.transform("a", dict)


def test_same_name_at_different_levels_is_fine():
    """A nested pipeline may reuse a name of its parent."""
    inner = Pipeline("inner").step("a", inc)
    assert Pipeline("p").step("a", inc).step("b", inner).step_paths() == ["a", "b/a", "b"]


def test_non_callable_item_is_rejected():
    """An item that is neither a function nor a pipeline names its position."""
    with pytest.raises(PipelineDefinitionError, match="item 2 must be a step function"):
        Pipeline("p").step("s", inc, 42)


def test_step_without_items_is_rejected():
    """A named step needs at least one item."""
    with pytest.raises(PipelineDefinitionError, match="no step function"):
        Pipeline("p").step("s")


def test_parallel_items_with_colliding_paths_are_rejected():
    """Two parallel items that would produce the same step path are an error."""
    left = Pipeline("l").step("x", inc)
    right = Pipeline("r").step("x", inc)
    with pytest.raises(PipelineDefinitionError, match="'s/x'"):
        Pipeline("p").step("s", left, right)


def test_several_items_need_a_name():
    """step(fn_a, fn_b) without a name is rejected with a hint."""
    with pytest.raises(PipelineDefinitionError, match="needs a name"):
        Pipeline("p").step(inc, inc)


def test_unknown_step_option_is_rejected():
    """A misspelt step option is Python's own TypeError, naming it (the signature is explicit)."""
    with pytest.raises(TypeError, match="retires"):
        Pipeline("p").step("s", inc, retires=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="retires"):
        Pipeline("p").transform("t", dict, retires=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="retires"):
        Pipeline("p").branch("b", on=str, cases={"x": inc}, retires=3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("when", 3),
        ("retries", -1),
        ("retries", True),
        ("retry_delay", -1),
        ("timeout", 0),
        ("on_error", "ignore"),
        ("merge", "union"),
        ("parallel_mode", "any"),
        ("retry_on", "ValueError"),
    ],
)
def test_bad_option_values_are_rejected(option, value):
    """Each option checks its value at build time."""
    with pytest.raises(PipelineDefinitionError, match=option):
        Pipeline("p").step("s", inc, **{option: value})


def test_unknown_pipeline_option_is_rejected():
    """Pipeline options are checked too: Python's TypeError names the misspelt one."""
    with pytest.raises(TypeError, match="on_complete"):
        Pipeline("p", on_complete=print)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="on_complete"):
        Pipeline("p").with_options(on_complete=print)  # type: ignore[typeddict-unknown-key]


def test_transform_needs_a_function():
    """A transform of a non-callable is rejected."""
    with pytest.raises(PipelineDefinitionError, match="transform 't'"):
        Pipeline("p").transform("t", 5)  # type: ignore[arg-type]


def test_branch_validation():
    """Branch selectors must be callable, cases non-empty, 'default' not doubly defined."""
    with pytest.raises(PipelineDefinitionError, match="on= must be a callable"):
        Pipeline("p").branch("b", on="x", cases={"a": inc})  # type: ignore[arg-type]
    with pytest.raises(PipelineDefinitionError, match="non-empty"):
        Pipeline("p").branch("b", on=len, cases={})
    with pytest.raises(PipelineDefinitionError, match="'default'"):
        Pipeline("p").branch("b", on=len, cases={"default": inc}, default=inc)
    with pytest.raises(PipelineDefinitionError, match="branch target"):
        Pipeline("p").branch("b", on=len, cases={"a": 5})


def test_retries_on_a_nested_only_step_are_rejected():
    """Retries and timeouts belong on step functions, not on a nested pipeline."""
    inner = Pipeline("inner").step("x", inc)
    with pytest.raises(PipelineDefinitionError, match="nested pipeline"):
        Pipeline("p").step("s", inner, retries=2)


def test_describe_and_step_paths():
    """describe() lists top-level names; step_paths() lists every path in run order."""
    inner = Pipeline("inner").step("x", inc)
    p = (
        Pipeline("p")
        .step("a", inc)
        .branch("b", on=len, cases={"one": inner, "two": inc})
        .step("c", inner, Pipeline("other").step("y", inc), inc)
    )
    assert p.describe() == ["a", "b", "c"]
    assert p.step_paths() == [
        "a",
        "b/one/x",
        "b/two/inc",
        "b",
        "c/x",
        "c/y",
        "c/inc",
        "c",
    ]


def test_fingerprint_follows_structure_not_code():
    """The fingerprint changes with names and nesting, not with function bodies."""
    a = Pipeline("p").step("x", inc)
    b = Pipeline("p").step("x", lambda ctx: None)
    c = Pipeline("p").step("y", inc)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint


class TestSharedNodes:
    """Steps go to a list shared by a chain of builders: O(1) per step, still immutable."""

    def test_extending_an_older_pipeline_does_not_change_newer_ones(self):
        """Two pipelines built from one base each keep their own steps."""
        base = Pipeline("p").step("one", inc)
        left = base.step("two", inc)
        right = base.step("other", inc).step("two", inc)
        again = base.step("two", inc)
        assert base.describe() == ["one"]
        assert left.describe() == ["one", "two"]
        assert right.describe() == ["one", "other", "two"]
        assert again.describe() == ["one", "two"]

    def test_a_name_added_by_a_sibling_is_free_in_the_base(self):
        """A name used by a pipeline extended from the base is still free in the base."""
        base = Pipeline("p").step("one", inc)
        base.step("two", inc)
        assert base.step("two", inc).describe() == ["one", "two"]
        with pytest.raises(PipelineDefinitionError, match="already has a step named 'one'"):
            base.step("two", inc).step("one", inc)

    def test_many_steps(self, runner):
        """A pipeline of 10,000 steps builds and runs (the build is O(n))."""
        p = Pipeline("long")
        for i in range(10_000):
            p = p.step(f"s{i}", inc)
        assert len(p.describe()) == 10_000
        assert runner.run(p, {"a": 0}) == {"a": 10_000}

    def test_threads_extending_one_base(self):
        """Builders extended from one base in several threads each get exactly their steps."""
        import threading

        base = Pipeline("p").step("zero", inc)
        results: dict[int, list[str]] = {}

        def extend(n: int) -> None:
            p = base
            for i in range(200):
                p = p.step(f"t{n}-{i}", inc)
            results[n] = p.describe()

        threads = [threading.Thread(target=extend, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in range(4):
            assert results[n] == ["zero", *(f"t{n}-{i}" for i in range(200))]


class TestNesting:
    """What a checkpoint cannot record is refused when the pipeline is built."""

    @staticmethod
    def _nested(levels: int, parallel: bool = False) -> Pipeline:
        p = Pipeline("inner").step("leaf", inc)
        for level in range(levels):
            if parallel:
                p = Pipeline(f"l{level}").step("par", p, Pipeline("side").step("s", inc))
            else:
                p = Pipeline(f"l{level}").step("nest", p)
        return p

    def test_deepest_allowed_nesting_checkpoints_and_resumes(self, runner):
        """At the limit (16 levels, parallel at each), a stop at the deepest step resumes."""
        p = self._nested(16, parallel=True)
        leaf = "par/" * 16 + "leaf"
        assert leaf in p.step_paths()

        def stop(event):
            if event.step_name == leaf:
                event.stop_pipeline()

        stopped = runner.run(p, {"a": 0}, on_step_complete=stop)
        assert stopped.status == "stopped"
        resumed = runner.resume(p, stopped.checkpoint)
        assert resumed == runner.run(p, {"a": 0})

    def test_nesting_past_the_limit_is_refused_when_built(self):
        """One level more is a PipelineDefinitionError that names the limit."""
        with pytest.raises(PipelineDefinitionError, match="at most 16 levels"):
            self._nested(17)

    def test_branch_cases_count_as_nesting(self):
        """Branch cases nest like pipelines."""
        inner = self._nested(16)
        with pytest.raises(PipelineDefinitionError, match="17 levels deep"):
            Pipeline("p").branch("b", on=lambda c: "x", cases={"x": inner})


def test_transform_named_from_function(runner):
    """transform(fn) takes the function's name, as step(fn) does."""

    def reset(ctx):
        return {"fresh": True}

    p = Pipeline("p").transform(reset)
    assert p.describe() == ["reset"]
    assert runner.run(p, {"a": 1}) == {"fresh": True}


def test_signed_pipeline_needs_a_name():
    """secret= without a name is refused: unnamed pipelines would accept each other's."""
    with pytest.raises(PipelineDefinitionError, match="needs a name of its own"):
        Pipeline(secret="0123456789abcdef0123")
    assert Pipeline("orders", secret="0123456789abcdef0123").name == "orders"
