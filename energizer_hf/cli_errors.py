"""How the command line fails: one line on stderr and a documented exit status.

Every failure ends in one line:

    energizer-hf: error: <Name>: <what to do>

where ``<Name>`` is the exception's class and the message says what was wrong and how to
fix it; the line is scrubbed of tokens and credentials (`energizer_hf.scrub.scrub`).
With ``--debug`` the (scrubbed) traceback is printed first, and the line still ends the
output. Argument errors of ``argparse`` already print ``energizer-hf: error: ...`` and exit
with 2.

Exit statuses (`EXIT_STATUSES`):

| code | meaning |
| --- | --- |
| 0 | success |
| 1 | unexpected error (a bug): re-run with `--debug` and report the traceback |
| 2 | usage or configuration: a bad value, an unknown field or strategy, a missing configuration, data or model path, a budget that cannot work |
| 3 | data or model: missing values, labels, classes, encodings, tokenizer, model head |
| 4 | run directory: in use (locked), damaged, another run's, not writable, disk full |
| 5 | remote server: the Hugging Face Hub or Label Studio failed or refused |
| 6 | out of memory: lower the batch sizes or lengths and re-run to resume |
| 130 | interrupted (Ctrl-C): says where it stopped; re-run the same command to resume |
| 141 | output pipe closed (output piped into `head`): no message |

>>> import io
>>> err = io.StringIO()
>>> with CliFailure(stream=err) as frame:
...     raise KeyboardInterrupt
>>> frame.status, err.getvalue().strip()
(130, 'energizer-hf: error: Interrupted: stopped before the first round was recorded; re-run the same command to resume.')
"""

from __future__ import annotations

import errno
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import IO, Any

from energizer_hf.scrub import scrub

__all__ = [
    "CliFailure",
    "EXIT_DATA",
    "EXIT_INTERRUPTED",
    "EXIT_MEMORY",
    "EXIT_PIPE",
    "EXIT_REMOTE",
    "EXIT_RUN_DIR",
    "EXIT_STATUSES",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "error_line",
    "exit_status",
    "run_command",
]

EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_RUN_DIR = 4
EXIT_REMOTE = 5
EXIT_MEMORY = 6
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141

#: Exit status → what it means (the table of the module docstring, for docs and --help).
EXIT_STATUSES = {
    0: "success",
    EXIT_UNEXPECTED: "unexpected error (a bug): re-run with --debug and report the traceback",
    EXIT_USAGE: "usage or configuration error",
    EXIT_DATA: "data or model error",
    EXIT_RUN_DIR: "run directory in use, damaged, another run's, not writable, or disk full",
    EXIT_REMOTE: "the Hugging Face Hub or Label Studio failed or refused",
    EXIT_MEMORY: "out of memory",
    EXIT_INTERRUPTED: "interrupted; re-run the same command to resume",
    EXIT_PIPE: "output pipe closed",
}

# energizer_hf's named errors by class name (the first class of the exception's MRO that is
# listed wins), so that no module is imported to classify an error (a quick CLI) and the
# table survives modules moving (hub.py → revisions/). Other EnergizerErrors: EXIT_USAGE.
_BY_NAME = {
    # usage / configuration
    "ConfigError": EXIT_USAGE,
    "BudgetError": EXIT_USAGE,
    "UnknownStrategyError": EXIT_USAGE,
    "InvalidStoppingCriterionError": EXIT_USAGE,
    "InvalidRepoIdError": EXIT_USAGE,
    "RoundNotFoundError": EXIT_USAGE,
    "PathNotFoundError": EXIT_USAGE,
    # data / model
    "ColumnNotFoundError": EXIT_DATA,
    "EmptyPoolError": EXIT_DATA,
    "LabelMismatchError": EXIT_DATA,
    "MissingValuesError": EXIT_DATA,
    "DataEncodingError": EXIT_DATA,
    "MissingTokenizerError": EXIT_DATA,
    "VocabularyMismatchError": EXIT_DATA,
    "UnsupportedModelError": EXIT_DATA,
    "InvalidScoresError": EXIT_DATA,
    "DataFormatError": EXIT_DATA,
    "InvalidTagsError": EXIT_DATA,
    "TagLengthMismatchError": EXIT_DATA,
    "EmptySentenceError": EXIT_DATA,
    "UnknownLabelError": EXIT_DATA,
    "EmptyLabelSetError": EXIT_DATA,
    "MissingLabelSetsError": EXIT_DATA,
    "UnsentItemError": EXIT_DATA,
    "StreamInputError": EXIT_USAGE,
    "NotResumableError": EXIT_USAGE,
    # run directory (and other saved state)
    "StreamStateError": EXIT_RUN_DIR,
    "CorruptLabelStateError": EXIT_RUN_DIR,
    "RunDirError": EXIT_RUN_DIR,
    "ConfigMismatchError": EXIT_RUN_DIR,
    "DatasetMismatchError": EXIT_RUN_DIR,
    "IndexMismatchError": EXIT_RUN_DIR,
    "CorruptIndexError": EXIT_RUN_DIR,
    # remote servers
    "HubSyncError": EXIT_REMOTE,
    "LabelStudioError": EXIT_REMOTE,
    # a bug in a strategy or the scorer
    "InvalidIdsError": EXIT_UNEXPECTED,
    "ScoringError": EXIT_UNEXPECTED,
}
# errors of the HTTP stacks the Hub and Label Studio clients use, by module
_REMOTE_MODULES = (
    "huggingface_hub",
    "requests",
    "httpx",
    "httpcore",
    "urllib3",
    "label_studio_sdk",
)


def _is_ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "energizer_hf"


def exit_status(err: BaseException) -> int:
    """The documented exit status of ``err`` (see the module docstring).

    >>> from energizer_hf.errors import RunLockedError, ConfigError
    >>> exit_status(ConfigError("x")), exit_status(RunLockedError("y")), exit_status(KeyError())
    (2, 4, 1)
    """
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(err, BrokenPipeError):
        return EXIT_PIPE
    for cls in type(err).__mro__:
        if _is_ours(cls) and cls.__name__ in _BY_NAME:
            return _BY_NAME[cls.__name__]
    if any(c.__name__ == "EnergizerError" and _is_ours(c) for c in type(err).__mro__):
        return EXIT_USAGE
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return EXIT_MEMORY
    if isinstance(err, OSError):
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            return EXIT_RUN_DIR
        if isinstance(err, FileNotFoundError):
            return EXIT_USAGE
    if any(c.__module__.split(".")[0] in _REMOTE_MODULES for c in type(err).__mro__):
        return EXIT_REMOTE
    if isinstance(err, (ConnectionError, TimeoutError)):
        return EXIT_REMOTE
    return EXIT_UNEXPECTED


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    out = ""
    for ln in lines:
        if not out:
            out = ln
        elif ln.startswith("- "):
            out += ("; " if not out.endswith(":") else " ") + ln[2:]
        else:
            out += " " + ln
    return out


def _advice(err: BaseException, status: int, stopped_at: str) -> tuple[str, str]:
    """(name, what to do) for an exception."""
    name = type(err).__name__
    message = str(err)
    if status == EXIT_INTERRUPTED:
        return "Interrupted", f"stopped {stopped_at}; re-run the same command to resume."
    if isinstance(err, OSError) and not _is_ours(type(err)):
        where = f" ('{err.filename}')" if getattr(err, "filename", None) else ""
        reason = err.strerror or message
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return name, (
                f"no space left on the device{where}: free some space (or use a run_dir on "
                "another disk), then re-run the same command to resume; the run directory "
                "keeps its last complete round."
            )
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return name, (
                f"{reason}{where}: make it writable, or choose a run_dir (or output path) you "
                "can write to."
            )
        if isinstance(err, FileNotFoundError):
            return name, f"{reason}{where}: check the path in the command or configuration."
    if status == EXIT_MEMORY:
        return name, (
            f"{message or 'out of memory'}. Lower batch_size / eval_batch_size (or max_length, "
            "pool_max_tokens, precision: bf16-mixed on a GPU), then re-run the same command: it "
            "resumes from the last recorded round."
        )
    if status == EXIT_REMOTE and not _is_ours(type(err)):
        return name, (
            f"{message}. The server failed or could not be reached: check the connection and "
            "the server, then re-run the same command (finished rounds are kept)."
        )
    if status == EXIT_UNEXPECTED:
        return name, (
            f"{message + ' ' if message else ''}(an unexpected error: re-run with --debug to see "
            "the traceback, and report it)."
        )
    return name, message or "no details"


def error_line(
    err: BaseException,
    *,
    prog: str = "energizer-hf",
    stopped_at: str = "before the first round was recorded",
    secrets: Iterable[str | None] = (),
) -> str:
    """The one line for ``err``: ``<prog>: error: <Name>: <what to do>``, scrubbed.

    >>> error_line(FileNotFoundError(2, "No such file or directory", "cfg.yaml"))
    "energizer-hf: error: FileNotFoundError: No such file or directory ('cfg.yaml'): check the path in the command or configuration."
    """
    name, advice = _advice(err, exit_status(err), stopped_at)
    return scrub(_one_line(f"{prog}: error: {name}: {advice}"), secrets)


class CliFailure:
    """Context manager around a CLI command: any exception becomes one line on ``stream``
    and `status`; nothing propagates except ``SystemExit``.

    Args:
        debug: print the scrubbed traceback before the line (``--debug``).
        stream: where to write (default ``sys.stderr``).
        prog: the program name of the line.
        secrets: extra values to scrub.

    Attributes:
        status: 0, or the exit status of the exception that ended the command.
        round: set it as the command goes (from a loop callback's ``on_round_start``: the
            round being run, which a re-run redoes); an interruption then says "stopped at
            round N".
        error: the exception, when there was one.
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        stream: IO[str] | None = None,
        prog: str = "energizer-hf",
        secrets: Iterable[str | None] = (),
    ) -> None:
        self.debug = debug
        self.stream = stream
        self.prog = prog
        self.secrets = list(secrets)
        self.status = 0
        self.round: int | None = None
        self.error: BaseException | None = None

    @property
    def stopped_at(self) -> str:
        if self.round is None:
            return "before the first round was recorded"
        return f"at round {self.round}"

    def __enter__(self) -> CliFailure:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, SystemExit):
            return False
        self.error = exc
        self.status = exit_status(exc)
        stream = self.stream or sys.stderr
        if self.status == EXIT_PIPE:
            return True  # the reader went away: nothing to say, nowhere to say it
        try:
            if self.debug:
                text = "".join(traceback.format_exception(exc_type, exc, tb))
                stream.write(scrub(text, self.secrets))
            stream.write(
                error_line(exc, prog=self.prog, stopped_at=self.stopped_at, secrets=self.secrets)
                + "\n"
            )
            stream.flush()
        except (BrokenPipeError, ValueError):  # stderr closed
            pass
        return True


def run_command(
    fn: Callable[[CliFailure], int | None], *, debug: bool = False, **kwargs: Any
) -> int:
    """Run ``fn(frame)`` inside a `CliFailure`; its return value (``None``: 0) or the
    failure's exit status.

    >>> run_command(lambda frame: 0)
    0
    """
    with CliFailure(debug=debug, **kwargs) as frame:
        result = fn(frame)
        return int(result or 0)
    return frame.status
