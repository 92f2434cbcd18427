"""The builder's keyword options: their types, the marker of one not given, and their checks.

Signatures are explicit (an IDE completes them, ``mypy --strict`` catches a
misspelt one); :data:`UNSET` tells "not given, inherit the default" apart from
an explicit ``None`` (``timeout=None`` switches a pipeline-wide timeout off).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar

from stepkit.errors import InvalidArgumentError, PipelineDefinitionError

if TYPE_CHECKING:
    from typing_extensions import Unpack

from stepkit.pipeline._plan import POLICY_DEFAULT_NAMES, as_hooks, check_name, check_options

__all__ = [
    "UNSET",
    "ErrorMode",
    "Hook",
    "OptionMethods",
    "MergeMode",
    "ParallelMode",
    "PipelineOptions",
    "RetryDelayOption",
    "RetryOnOption",
    "Secret",
    "Unset",
    "When",
    "DEFAULT_NAME",
    "HOOK_OPTIONS",
    "PIPELINE_OPTIONS",
    "checked_options",
    "STEP_OPTION_NAMES",
    "given",
    "step_options",
]


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: An option that was not given: the pipeline's default (or stepkit's) applies.
UNSET = Unset.UNSET

ErrorMode = Literal["raise", "continue", "skip_remaining"]
MergeMode = Literal["override", "error", "warn", "skip"]
ParallelMode = Literal["all", "settled"]
#: A handler, or several called in order.
Hook = Callable[..., Any] | Sequence[Callable[..., Any]]
#: One signing key, or several (newest first) while keys rotate.
Secret = str | bytes | Sequence[str | bytes]
#: ``when=``: a bool, or a (sync or async) predicate of the context.
When = bool | Callable[[Mapping[str, Any]], Any]
RetryDelayOption = float | Callable[[int, BaseException], float]
RetryOnOption = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


class PipelineOptions(TypedDict, total=False):
    """The keyword options of ``Pipeline(...)``, for ``with_options(**options)``."""

    on_step_complete: Hook | None
    on_step_start: Hook | None
    on_error: Hook | None
    log: bool | None
    secret: Secret | None
    version: str | int | None
    migrations: Mapping[str, Callable[[dict[str, Any]], Mapping[str, Any]]] | None
    renamed: Mapping[str, str] | None
    compress_threshold: int | None
    retries: int
    retry_delay: RetryDelayOption
    retry_on: RetryOnOption
    timeout: float | None
    merge: MergeMode
    parallel_mode: ParallelMode


#: The keyword options of ``step``, ``transform`` and ``branch`` (the fields of a policy).
STEP_OPTION_NAMES = (
    "when",
    "retries",
    "retry_delay",
    "retry_on",
    "timeout",
    "on_error",
    "merge",
    "parallel_mode",
    "log",
)


def step_options(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The step options a builder method was given, from its ``locals()``: those not UNSET.

    A method without some option (a graph node has no ``when=``) simply lacks the name.
    """
    return {
        name: value
        for name in STEP_OPTION_NAMES
        if (value := arguments.get(name, UNSET)) is not UNSET
    }


def given(**options: Any) -> dict[str, Any]:
    """The options that were given: neither :data:`UNSET` nor (for hooks and the like) ``None``.

    ``None`` is kept for ``timeout`` and ``compress_threshold``, where it is a choice.
    """
    return {
        k: v
        for k, v in options.items()
        if v is not UNSET and (v is not None or k in _NONE_IS_A_CHOICE)
    }


_NONE_IS_A_CHOICE = frozenset({"timeout", "compress_threshold"})


#: The name of a pipeline created without one.
DEFAULT_NAME = "pipeline"
HOOK_OPTIONS = ("on_step_complete", "on_step_start", "on_error")
PIPELINE_OPTIONS = frozenset(
    {
        "on_step_complete",
        "on_step_start",
        "on_error",
        "log",
        "secret",
        "version",
        "migrations",
        "renamed",
        "compress_threshold",
        *POLICY_DEFAULT_NAMES,
    }
)


def checked_options(
    name: str, options: Mapping[str, Any], kind: str = "Pipeline", unnamed: str = DEFAULT_NAME
) -> dict[str, Any]:
    """Validate the options of a pipeline (or a graph: ``kind``) once, at build time.

    Hooks and signing keys are normalised; messages name ``kind(name)``.
    """
    where = f"{kind}({name!r})"
    check_name(name, "pipeline name")
    opts = dict(options)
    for hook in HOOK_OPTIONS:
        if hook in opts:
            opts[hook] = as_hooks(opts[hook], hook)
    defaults = {k: opts[k] for k in POLICY_DEFAULT_NAMES if k in opts}
    opts.update(check_options(defaults, where))
    version = opts.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, str | int)):
        raise PipelineDefinitionError(f"version= must be a str or int, got {version!r}")
    threshold = opts.get("compress_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
    ):
        raise PipelineDefinitionError(
            f"compress_threshold= must be a size in bytes (int >= 0) or None, got {threshold!r}"
        )
    if "migrations" in opts or "renamed" in opts:
        from stepkit.checkpoints._migrations import check_migration_options

        check_migration_options(opts, where)
    if opts.get("secret") is not None:
        if name == unnamed:
            raise PipelineDefinitionError(
                f"a signed {kind.lower()} needs a name of its own: {kind}('orders', secret=...). "
                f"Unnamed ones are all called {unnamed!r}, so one would accept "
                "checkpoints signed for another that shares the key"
            )
        # loaded here, not at import: signing is not needed to build most pipelines
        from stepkit.checkpoints._envelope import normalize_keys

        try:  # normalised once: a tuple of keys, newest first
            opts["secret"] = normalize_keys(opts["secret"])
        except InvalidArgumentError as exc:
            raise PipelineDefinitionError(f"{where}: {exc}") from None
    else:
        opts.pop("secret", None)
    return opts


_O = TypeVar("_O", bound="OptionMethods")


class OptionMethods:
    """``with_options``, ``with_hooks``, ``without_hooks``: shared by pipelines and graphs.

    A class using it has ``_options`` and makes its copies in ``_replaced(options)``.
    """

    __slots__ = ()

    _options: Mapping[str, Any]

    def _replaced(self: _O, options: Mapping[str, Any]) -> _O:
        raise NotImplementedError

    def with_options(self: _O, **options: Unpack[PipelineOptions]) -> _O:
        """A copy with these pipeline options replaced (same steps).

        Takes the keyword options of the constructor; an unknown one is a ``TypeError``.
        """
        unknown = set(options) - PIPELINE_OPTIONS
        if unknown:
            raise TypeError(
                f"with_options() got unexpected keyword argument(s) {', '.join(sorted(unknown))}; "
                f"valid options are {', '.join(sorted(PIPELINE_OPTIONS))}"
            )
        return self._replaced(options)

    def with_hooks(
        self: _O,
        *,
        on_step_complete: Callable[..., Any] | None = None,
        on_step_start: Callable[..., Any] | None = None,
        on_error: Callable[..., Any] | None = None,
    ) -> _O:
        """A copy with these handlers added after the existing ones."""
        added = {
            "on_step_complete": on_step_complete,
            "on_step_start": on_step_start,
            "on_error": on_error,
        }
        merged = {
            name: (*self._options.get(name, ()), *as_hooks(hook, name))
            for name, hook in added.items()
            if hook is not None
        }
        return self._replaced(merged)

    def without_hooks(self: _O, *handlers: Callable[..., Any]) -> _O:
        """A copy without these handlers (in every hook list they were added to)."""
        kept = {
            name: tuple(h for h in self._options[name] if h not in handlers)
            for name in HOOK_OPTIONS
            if name in self._options
        }
        return self._replaced(kept)
