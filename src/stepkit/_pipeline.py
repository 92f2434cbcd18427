"""``Pipeline``, the public class: the builder of :mod:`stepkit.pipeline` plus its run methods.

The builder layer knows nothing of running; this class adds ``run``,
``run_checkpoint`` and ``resume`` (with their ``a``-prefixed async twins) with
explicit, typed, keyword-only signatures, and hands each call to the plain
entry points (:mod:`stepkit.engine._entry`) or, with ``store=``, to the
durable ones (:mod:`stepkit.durable._entry`). Those load only when first used,
so ``import stepkit`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from stepkit.pipeline._builder import PipelineBuilder
from stepkit.pipeline._options import Hook, given

if TYPE_CHECKING:
    from stepkit.events import RunResult
    from stepkit.stores import Store

__all__ = ["Pipeline"]


class Abort(Protocol):
    """What ``abort=`` takes: a ``threading.Event``, or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


class Pipeline(PipelineBuilder):
    """An immutable, named sequence of steps over a dict context.

    >>> calc = Pipeline("calc").step("add-one", lambda ctx: {"a": ctx["a"] + 1})
    >>> dict(calc.run({"a": 1}))
    {'a': 2}
    """

    __slots__ = ()

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
        """Run synchronously from the first step; see docs/pipelines.md.

        With ``store=`` the run is durable: persisted after every step and
        resumable by ``run_id`` (``ttl=``, ``lease=``: docs/durable-runs.md).
        """
        options = given(
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
            run_id=run_id,
            store=store,
            ttl=ttl,
            lease=lease,
        )
        return _start(self, input, options)

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
        options = given(
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
            run_id=run_id,
            strict=strict or None,
        )
        return _from_checkpoint(self, checkpoint, override_data, options)

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
        options = given(
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
            store=store,
            override_data=override_data,
            recover=recover or None,
            dead_owner=dead_owner,
            expect_version=expect_version,
            version=version,
            fork=fork or None,
            strict=strict or None,
            ttl=ttl,
            lease=lease,
        )
        return _resume(self, run_id, options)

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
        options = given(
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
            run_id=run_id,
            store=store,
            ttl=ttl,
            lease=lease,
        )
        return await _astart(self, input, options)

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
        options = given(
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
            run_id=run_id,
            strict=strict or None,
        )
        return await _afrom_checkpoint(self, checkpoint, override_data, options)

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
        options = given(
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
            store=store,
            override_data=override_data,
            recover=recover or None,
            dead_owner=dead_owner,
            expect_version=expect_version,
            version=version,
            fork=fork or None,
            strict=strict or None,
            ttl=ttl,
            lease=lease,
        )
        return await _aresume(self, run_id, options)


def _start(pipeline: Pipeline, input: Any, options: dict[str, Any]) -> RunResult:
    if "store" in options:
        from stepkit.durable._entry import run_durable

        return run_durable(pipeline, input, options)
    from stepkit.engine._entry import run

    return run(pipeline, input, options)


async def _astart(pipeline: Pipeline, input: Any, options: dict[str, Any]) -> RunResult:
    if "store" in options:
        from stepkit.durable._entry import arun_durable

        return await arun_durable(pipeline, input, options)
    from stepkit.engine._entry import arun

    return await arun(pipeline, input, options)


def _from_checkpoint(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: dict[str, Any]
) -> RunResult:
    from stepkit.engine._entry import run_checkpoint

    return run_checkpoint(pipeline, checkpoint, override, options)


async def _afrom_checkpoint(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: dict[str, Any]
) -> RunResult:
    from stepkit.engine._entry import arun_checkpoint

    return await arun_checkpoint(pipeline, checkpoint, override, options)


def _resume(pipeline: Pipeline, run_id: Any, options: dict[str, Any]) -> RunResult:
    from stepkit.durable._entry import resume

    return resume(pipeline, run_id, options)


async def _aresume(pipeline: Pipeline, run_id: Any, options: dict[str, Any]) -> RunResult:
    from stepkit.durable._entry import aresume

    return await aresume(pipeline, run_id, options)
