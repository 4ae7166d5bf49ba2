"""Tasks: sources of Problems, with prompt template, answer extraction and checker."""

from oomlab.tasks.base import TASKS, Task, create_task

__all__ = ["TASKS", "Task", "create_task"]
