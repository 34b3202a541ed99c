"""The upload's task, and the questions ml/datasets asks it beyond ``Task``'s own methods."""

from ml.datasets.errors import IngestError
from ml.datasets.options import IngestOptions
from ml.datasets.records import SkipExampleError
from ml.tasks import Task, UnknownTask, get_task, task_names


def task_of(options: IngestOptions) -> Task:
    try:
        return get_task(options.task)
    except UnknownTask:
        raise IngestError(
            "invalid_task",
            f"{options.task!r} is not a task; use one of {', '.join(task_names())}.",
            field="task",
        ) from None


def target_field(task: Task) -> str:
    """The request field that names the target column(s): label_column, target_column."""
    return task.target_field


def missing_target(task: Task, options: IngestOptions, detail: str) -> SkipExampleError:
    """An item that has no target (an image outside any folder, not in labels.csv), skipped
    with the reason the task gives an empty target (missing_label, missing_target)."""
    try:
        task.parse_target([None] * len(task.columns(options)), options)
    except SkipExampleError as error:
        return SkipExampleError(error.reason, detail)
    return SkipExampleError("missing_target", detail)
