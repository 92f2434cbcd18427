"""A registered workflow (what ``@client.workflow`` returns) and the ``ctx`` its function gets."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from stepkit._checks import check_count, check_id, check_seconds
from stepkit.errors import InvalidArgumentError
from stepkit.workflows._policy import StepPolicy, check_retry_delay
from stepkit.workflows._schema import check_schema

__all__ = ["Hooks", "Workflow", "WorkflowContext", "hooks_of"]

R = TypeVar("R")
Hooks = tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]


def hooks_of(start: Any, complete: Any, error: Any) -> Hooks:
    """Normalise on_step_start, on_step_complete, on_error (a callable, a list or None)."""

    def many(value: Any, name: str) -> tuple[Any, ...]:
        if value is None:
            return ()
        items = tuple(value) if isinstance(value, list | tuple) else (value,)
        for item in items:
            if not callable(item):
                raise InvalidArgumentError(f"{name}= must be callables, got {item!r}")
        return items

    return (
        many(start, "on_step_start"),
        many(complete, "on_step_complete"),
        many(error, "on_error"),
    )


class Workflow(Generic[R]):
    """A workflow function with its id and options; start it with ``client.start_workflow``.

    Calling it directly is not supported: a workflow runs under a client,
    which records its ops. ``is_async`` says whether it is an ``async def``.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        id: str,
        input_schema: Any = None,
        version: str = "1",
        retries: int = 0,
        step_retries: int = 3,
        retry_delay: Any = None,
        timeout: float | None = None,
        ttl: float | None = None,
        migrations: Mapping[str, Callable[[Any], Any]] | None = None,
        signals: Mapping[str, Any] | None = None,
        hooks: Hooks = ((), (), ()),
    ) -> None:
        if not callable(fn):
            raise InvalidArgumentError(f"a workflow must be a function, got {fn!r}")
        self.fn = fn
        self.id = check_id(id, "id")
        if self.id.startswith("stepkit:") or "/" in self.id:
            raise InvalidArgumentError(
                f"id= must not contain '/' nor start with 'stepkit:': {id!r}"
            )
        if not isinstance(version, str) or not version:
            raise InvalidArgumentError(f"version= must be a non-empty str, got {version!r}")
        self.version = version
        self.input_schema = check_schema(input_schema, "input_schema")
        self.retries = check_count(retries, "retries")
        self.policy = StepPolicy(
            retries=check_count(step_retries, "step_retries"),
            retry_delay=check_retry_delay(retry_delay),
        )
        self.timeout = check_seconds(timeout, "timeout")
        self.ttl = check_seconds(ttl, "ttl")
        if migrations is not None and not (
            isinstance(migrations, Mapping) and all(callable(f) for f in migrations.values())
        ):
            raise InvalidArgumentError(
                "migrations= maps an old version (str) to a function of the old input"
            )
        self.migrations = dict(migrations or {})
        if signals is not None and not isinstance(signals, Mapping):
            raise InvalidArgumentError("signals= maps signal names to schemas")
        self.signals: dict[str, Any] = {
            name: check_schema(schema, f"signals[{name!r}]")
            for name, schema in (signals or {}).items()
        }
        self.hooks = hooks
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.id)

    def __repr__(self) -> str:
        return f"<Workflow {self.id!r} version {self.version!r}>"

    def migrate(self, data: Any, stored_version: str) -> Any:
        """The stored input upgraded from ``stored_version`` by the chain of ``migrations``."""
        seen: set[str] = set()
        version = stored_version
        while version != self.version and version in self.migrations and version not in seen:
            seen.add(version)
            data = self.migrations[version](data)
            version = _next_version(version, self.migrations, self.version)
        return data


def _next_version(version: str, migrations: Mapping[str, Any], current: str) -> str:
    """Migrations are keyed by the version they upgrade from: the next key, or the current one."""
    keys = sorted(migrations, key=_version_key)
    later = [k for k in keys if _version_key(k) > _version_key(version)]
    return later[0] if later else current


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


class WorkflowContext:
    """What a workflow function knows about its run (the ``ctx`` argument).

    ``input`` is a decoded copy of the stored input (upgraded by ``migrations``
    when the run was started by another ``version``), ``attempt`` counts the
    whole-workflow attempts from 1, ``definition_changed`` is true when the run
    was started by another ``version`` of the workflow.
    """

    __slots__ = (
        "_core",
        "attempt",
        "definition_changed",
        "input",
        "run_id",
        "started_version",
        "version",
        "workflow_id",
    )

    def __init__(
        self,
        core: Any,
        *,
        run_id: str,
        workflow_id: str,
        version: str,
        started_version: str,
        input: Any,
        attempt: int,
    ) -> None:
        self._core = core
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.version = version
        self.started_version = started_version
        self.definition_changed = started_version != version
        self.input = input
        self.attempt = attempt

    def idempotency_key(self, step_id: str) -> str:
        """A key for external APIs, the same on every replay of the op ``step_id`` in flight."""
        key: str = self._core.idempotency_key(step_id)
        return key
