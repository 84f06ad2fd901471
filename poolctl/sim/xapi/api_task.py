"""task.*: cancel, destroy (the record getters are generic, see api_common)."""

from __future__ import annotations

from .registry import Context, api


@api("task.cancel", "task")
def cancel(ctx: Context, task: str) -> None:
    ctx.pool.tasks.cancel(task, by=ctx.task)


@api("task.destroy", "self")
def destroy(ctx: Context, self: str) -> None:
    ctx.pool.tasks.destroy(self)


@api("task.create", "label", "description")
def create(ctx: Context, label: str, description: str) -> str:
    return ctx.pool.tasks.create(str(label), ctx.pool.master, str(description))
