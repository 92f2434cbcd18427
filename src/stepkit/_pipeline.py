"""``Pipeline``, the public class: the builder of :mod:`stepkit.pipeline` plus its run methods.

The builder layer knows nothing of running; :class:`RunMethods` adds ``run``,
``run_checkpoint`` and ``resume`` (with their ``a``-prefixed async twins) with
explicit, typed, keyword-only signatures, and hands each call to the plain
entry points (:mod:`stepkit.engine._entry`) or, with ``store=``, to the
durable ones (:mod:`stepkit.durable._entry`). Those load only when first used,
so ``import stepkit`` stays cheap. ``stepkit.Graph`` uses the same methods on
its compiled plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from stepkit.errors import InvalidArgumentError
from stepkit.pipeline._builder import PipelineBuilder
from stepkit.pipeline._options import Hook

if TYPE_CHECKING:
    from stepkit.durable._options import DurableOptions
    from stepkit.engine._options import RunOptions
    from stepkit.events import RunResult
    from stepkit.stores import Store

__all__ = ["Abort", "Pipeline", "RunMethods"]


class Abort(Protocol):
    """What ``abort=`` takes: a ``threading.Event``, or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


class RunMethods:
    """The run methods of :class:`Pipeline` and ``Graph``, over the plan ``_plan()`` returns."""

    __slots__ = ()

    def _plan(self) -> PipelineBuilder:
        """What the engine runs: a pipeline itself, a graph's compiled plan."""
        raise NotImplementedError

    def run(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        store: Store | None = None,
        ttl: float | None = None,
        lease: float | None = None,
    ) -> RunResult:
        """Run from the first step and return the final context; see docs/pipelines.md.

        With ``store=`` the run is durable: persisted after every step and
        resumable by ``run_id`` (``ttl=``, ``lease=``: docs/durable-runs.md).
        """
        run = _run_options(
            run_id=run_id,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        if store is None:
            _no_store(ttl=ttl, lease=lease)
            from stepkit.engine._entry import run as run_plain

            return run_plain(self._plan(), input, run)
        from stepkit.durable._entry import run_durable

        durable = _durable_options("run()", store=store, ttl=ttl, lease=lease)
        return run_durable(self._plan(), input, run, durable)

    def run_checkpoint(
        self,
        checkpoint: str,
        override_data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        strict: bool = False,
    ) -> RunResult:
        """Resume after the step recorded in ``checkpoint``, with ``override_data`` merged in."""
        run = _run_options(
            run_id=run_id,
            strict=strict,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        from stepkit.engine._entry import run_checkpoint as from_checkpoint

        return from_checkpoint(self._plan(), checkpoint, override_data, run)

    def resume(
        self,
        run_id: str,
        *,
        store: Store,
        override_data: Mapping[str, Any] | None = None,
        recover: bool = False,
        dead_owner: str | None = None,
        expect_version: int | None = None,
        version: int | None = None,
        fork: bool = False,
        strict: bool = False,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        ttl: float | None = None,
        lease: float | None = None,
    ) -> RunResult:
        """Continue a stored run: paused, failed, or crashed (``recover=True``).

        A completed run returns its stored result without running anything.
        See docs/durable-runs.md for ``recover``, ``dead_owner``, ``expect_version``,
        ``version`` (time travel) and ``fork``.
        """
        run = _run_options(
            strict=strict,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        durable = _durable_options(
            "resume()",
            store=store,
            ttl=ttl,
            lease=lease,
            override_data=override_data,
            recover=recover,
            dead_owner=dead_owner,
            expect_version=expect_version,
            version=version,
            fork=fork,
        )
        from stepkit.durable._entry import resume as resume_stored

        return resume_stored(self._plan(), run_id, run, durable)

    async def arun(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        store: Store | None = None,
        ttl: float | None = None,
        lease: float | None = None,
    ) -> RunResult:
        """Async twin of :meth:`run`: steps and handlers may be sync or async."""
        run = _run_options(
            run_id=run_id,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        if store is None:
            _no_store(ttl=ttl, lease=lease)
            from stepkit.engine._entry import arun as arun_plain

            return await arun_plain(self._plan(), input, run)
        from stepkit.durable._entry import arun_durable

        durable = _durable_options("run()", store=store, ttl=ttl, lease=lease)
        return await arun_durable(self._plan(), input, run, durable)

    async def arun_checkpoint(
        self,
        checkpoint: str,
        override_data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        strict: bool = False,
    ) -> RunResult:
        """Async twin of :meth:`run_checkpoint`."""
        run = _run_options(
            run_id=run_id,
            strict=strict,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        from stepkit.engine._entry import arun_checkpoint as afrom_checkpoint

        return await afrom_checkpoint(self._plan(), checkpoint, override_data, run)

    async def aresume(
        self,
        run_id: str,
        *,
        store: Store,
        override_data: Mapping[str, Any] | None = None,
        recover: bool = False,
        dead_owner: str | None = None,
        expect_version: int | None = None,
        version: int | None = None,
        fork: bool = False,
        strict: bool = False,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        ttl: float | None = None,
        lease: float | None = None,
    ) -> RunResult:
        """Async twin of :meth:`resume`."""
        run = _run_options(
            strict=strict,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        durable = _durable_options(
            "resume()",
            store=store,
            ttl=ttl,
            lease=lease,
            override_data=override_data,
            recover=recover,
            dead_owner=dead_owner,
            expect_version=expect_version,
            version=version,
            fork=fork,
        )
        from stepkit.durable._entry import aresume as aresume_stored

        return await aresume_stored(self._plan(), run_id, run, durable)


class Pipeline(RunMethods, PipelineBuilder):
    """An immutable, named sequence of steps over a dict context.

    >>> calc = Pipeline("calc").step("add-one", lambda ctx: {"a": ctx["a"] + 1})
    >>> dict(calc.run({"a": 1}))
    {'a': 2}
    """

    __slots__ = ()

    def _plan(self) -> PipelineBuilder:
        return self


def _run_options(**options: Any) -> RunOptions:
    from stepkit.engine._options import run_options

    return run_options(**options)


def _durable_options(call: str, **options: Any) -> DurableOptions:
    from stepkit.durable._options import durable_options

    return durable_options(call, **options)


def _no_store(*, ttl: float | None, lease: float | None) -> None:
    """Options of durable runs only, given without ``store=``, say so."""
    given = [name for name, value in (("ttl", ttl), ("lease", lease)) if value is not None]
    if given:
        names = " and ".join(f"{name}=" for name in given)
        raise InvalidArgumentError(
            f"run(): {names} need{'s' if len(given) == 1 else ''} a store: they apply to "
            "durable runs only; pass store= as well, or drop them"
        )
