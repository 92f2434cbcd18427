"""Upgrading old checkpoints: context migrations between versions, renamed step paths.

``Pipeline(version="3", migrations={"1": up1, "2": up2}, renamed={"old": "new"})``:
a version-1 checkpoint's context goes through ``up1`` then ``up2``; a recorded
step path listed in ``renamed`` is rewritten before resuming (the resume
position itself is renamed by :mod:`stepkit.engine._position`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from stepkit.errors import CheckpointMismatchError, PipelineDefinitionError

Migrations = Mapping[str, Callable[[dict[str, Any]], Mapping[str, Any]]]


def _version_key(version: str) -> tuple[Any, ...]:
    """Natural order: "2" < "10", "1.9" < "1.10"."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-]", version))


def check_migration_options(options: dict[str, Any], where: str) -> None:
    """Validate ``migrations=`` and ``renamed=`` at build time (normalising keys to str).

    ``where`` names the pipeline or graph in messages, e.g. ``"Pipeline('orders')"``.
    """
    migrations = options.get("migrations")
    if migrations is not None:
        if not isinstance(migrations, Mapping) or not all(callable(f) for f in migrations.values()):
            raise PipelineDefinitionError(
                f"{where}: migrations= must map a version to a function "
                "(context) -> context of the next version"
            )
        if options.get("version") is None:
            raise PipelineDefinitionError(
                f"{where}: migrations= needs version= (the version they lead to)"
            )
        options["migrations"] = {str(k): f for k, f in migrations.items()}
    renamed = options.get("renamed")
    if renamed is not None and (
        not isinstance(renamed, Mapping)
        or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in renamed.items()
        )
    ):
        raise PipelineDefinitionError(
            f"{where}: renamed= must map old step paths to new step paths (strs)"
        )


def migrate_context(
    context: dict[str, Any],
    from_version: str | None,
    to_version: str | None,
    migrations: Migrations,
) -> dict[str, Any]:
    """Run the chain of migrations from ``from_version`` up to ``to_version``.

    A checkpoint made before the pipeline had a ``version=`` counts as version "0".
    """
    if from_version == to_version:
        return context
    from_version = "0" if from_version is None else from_version
    order = sorted(migrations, key=_version_key)
    if from_version not in migrations:
        raise CheckpointMismatchError(
            f"this checkpoint is of version {from_version!r} and the pipeline is at version "
            f"{to_version!r}, with no migration from {from_version!r}; add "
            f"migrations={{{from_version!r}: upgrade}} to the Pipeline (known: "
            f"{', '.join(order) or 'none'})"
        )
    for version in order[order.index(from_version) :]:
        try:
            upgraded = migrations[version](dict(context))
        except Exception as exc:
            raise CheckpointMismatchError(
                f"the migration from version {version!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(upgraded, Mapping):
            raise CheckpointMismatchError(
                f"the migration from version {version!r} returned "
                f"{type(upgraded).__name__}, not the upgraded context (a mapping)"
            )
        context = dict(upgraded)
    return context


def rename_step(step: str | None, renamed: Mapping[str, str]) -> str | None:
    """Rewrite a step path whose own path or an ancestor's was renamed."""
    if step is None:
        return None
    parts = step.split("/")
    for cut in range(len(parts), 0, -1):
        head = "/".join(parts[:cut])
        if head in renamed:
            return "/".join([renamed[head], *parts[cut:]])
    return step
