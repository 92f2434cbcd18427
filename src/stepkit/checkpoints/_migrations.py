"""Upgrading old checkpoints: context migrations between versions, renamed step paths.

``Pipeline(version="3", migrations={"1": up1, "2": up2}, renamed={"old": "new"})``:
a version-1 checkpoint's context goes through ``up1`` then ``up2``; recorded
step paths listed in ``renamed`` are rewritten before resuming.
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


def check_migration_options(options: dict[str, Any], name: str) -> None:
    """Validate ``migrations=`` and ``renamed=`` at build time (normalising keys to str)."""
    migrations = options.get("migrations")
    if migrations is not None:
        if not isinstance(migrations, Mapping) or not all(callable(f) for f in migrations.values()):
            raise PipelineDefinitionError(
                f"Pipeline({name!r}): migrations= must map a version to a function "
                "(context) -> context of the next version"
            )
        if options.get("version") is None:
            raise PipelineDefinitionError(
                f"Pipeline({name!r}): migrations= needs version= (the version they lead to)"
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
            f"Pipeline({name!r}): renamed= must map old step paths to new step paths (strs)"
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


def rename_position(pos: Any, renamed: Mapping[str, str], prefix: str = "") -> Any:
    """Rewrite the names in a position tree according to ``renamed`` (full paths)."""
    if not isinstance(pos, dict) or not renamed:
        return pos
    out = dict(pos)
    key = "done" if "done" in pos else "at"
    name = pos.get(key)
    if not isinstance(name, str):
        return pos
    old_path = prefix + name
    if old_path in renamed:
        new_path = renamed[old_path]
        new_prefix, _, new_name = new_path.rpartition("/")
        if (new_prefix + "/" if new_prefix else "") != prefix:
            raise CheckpointMismatchError(
                f"renamed={{{old_path!r}: {new_path!r}}} moves the step to another parent; "
                "renamed= can only rename a step within its parent"
            )
        out[key] = new_name
    here = prefix + out[key] + "/"
    old_here = old_path + "/"
    if "case" in pos and isinstance(pos["case"], str):
        case_path = old_here + pos["case"]
        if case_path in renamed:
            out["case"] = renamed[case_path].rpartition("/")[2]
        out["in"] = rename_position(
            pos.get("in"), _rebase(renamed, case_path, here + out["case"]), here + out["case"] + "/"
        )
    elif "in" in pos:
        out["in"] = rename_position(pos["in"], _rebase(renamed, old_path, prefix + out[key]), here)
    if isinstance(pos.get("items"), list):
        base = _rebase(renamed, old_path, prefix + out[key])
        out["items"] = [
            {**item, "in": rename_position(item.get("in"), base, here)}
            if isinstance(item, dict) and "in" in item
            else item
            for item in pos["items"]
        ]
    return out


def _rebase(renamed: Mapping[str, str], old: str, new: str) -> dict[str, str]:
    """Renames below ``old`` expressed as if ``old`` had already been renamed to ``new``."""
    if old == new:
        return dict(renamed)
    out: dict[str, str] = {}
    for k, v in renamed.items():
        out[new + k[len(old) :] if k.startswith(old + "/") else k] = v
    return out
