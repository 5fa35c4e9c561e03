"""Every exception the grader raises on purpose.

    GraderError                 could not grade: never a student's fault, never a 0
    ├── UsageError              the caller asked for something impossible (bad option, bad path)
    ├── RubricError             the rubric file is invalid (names file, line and field)
    ├── FetchError              the repository could not be cloned or the ref resolved
    ├── MachineError            the machine cannot do what grading needs (no index, no port)
    └── StackError              a dependency service of the grading stack failed to start

Errors of lower layers (GitPython, subprocess, httpx, docker) are translated into these
where they are caught. A submission misbehaving is *not* an exception: it becomes evidence.
Each class carries the exit code and the label of its one line, for every command alike.
"""

# The exit codes of every command (README, "Exit codes").
EXIT_GRADED, EXIT_BELOW_THRESHOLD, EXIT_USAGE, EXIT_COULD_NOT_GRADE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_DIFFERENT = 1  # grade diff: the two gradings differ


class GraderError(Exception):
    """The grader could not do its job; the message is one line fit for a terminal."""

    exit_code = EXIT_COULD_NOT_GRADE
    label = "could not grade"


class UsageError(GraderError):
    """The command line asked for something that cannot be done."""

    exit_code = EXIT_USAGE
    label = "error"  # the caller's input, not the grader's failure


class RubricError(GraderError):
    """The rubric file is invalid."""

    exit_code = EXIT_USAGE
    label = "error"


class FetchError(GraderError):
    """The submission could not be fetched (bad URL, missing ref, empty repository...)."""


class MachineError(GraderError):
    """The machine lacks something grading needs (package index, free port, a tool)."""


class StackError(GraderError):
    """A service of the grading stack (not the submission) failed."""
