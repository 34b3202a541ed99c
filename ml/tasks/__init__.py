"""The task registry: every task Hone trains and serves, by name.

Adding a task is one module (or package) that defines a ``Task`` and a ``register`` call
here; nothing else in Hone branches on task names. ``tasks_for("image")`` is the task↔modality
mapping the API, the trainer and serving all use.
"""

from ml.tasks.base import Fitted, Modality, PredictOptions, ProbeFit, ServingHead, Task

_TASKS: dict[str, Task] = {}
_builtin_loaded = False


class UnknownTask(KeyError):
    """A name that no registered task has (an old artifact, a typo in a request)."""


def register(task: Task) -> Task:
    if task.name in _TASKS and _TASKS[task.name] is not task:
        raise ValueError(f"task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove a task (tests that register a toy task clean up with this)."""
    _TASKS.pop(name, None)


def get_task(name: str) -> Task:
    _load_builtin()
    try:
        return _TASKS[name]
    except KeyError:
        known = ", ".join(sorted(_TASKS))
        raise UnknownTask(f"unknown task {name!r}; known: {known}") from None


def task_names() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_TASKS))


def tasks_for(modality: str) -> tuple[Task, ...]:
    _load_builtin()
    return tuple(task for _, task in sorted(_TASKS.items()) if task.modality == modality)


def _load_builtin() -> None:
    # Imported on first use: the task modules import torch-side helpers, and ml.tasks itself
    # must stay importable from the API's light modules.
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    from ml.tasks import classification, regression

    for module in (classification, regression):
        for task in module.TASKS:
            register(task)


BUILTIN_TASKS = (
    "image_classification",
    "image_regression",
    "text_classification",
    "text_regression",
)

__all__ = [
    "BUILTIN_TASKS",
    "Fitted",
    "Modality",
    "PredictOptions",
    "ProbeFit",
    "ServingHead",
    "Task",
    "UnknownTask",
    "get_task",
    "register",
    "task_names",
    "tasks_for",
    "unregister",
]
