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
    """Misspelt options fail at build time and list the valid ones."""
    with pytest.raises(PipelineDefinitionError, match=r"unknown option.*retires"):
        Pipeline("p").step("s", inc, retires=3)


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
    """Pipeline options are checked too."""
    with pytest.raises(PipelineDefinitionError, match="unknown option"):
        Pipeline("p", on_complete=print)


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
