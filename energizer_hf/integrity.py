"""The integrity check of a run directory: do its files agree, and what to do when not.

Run on every resume (under the run's lock, before the label state is opened) and by
``energizer-hf check RUN_DIR`` / ``energizer-hf repair RUN_DIR``. It reads the files named
by a `RunFiles` (``RunDir`` provides them) and returns an `IntegrityReport`
listing each problem with what to do, and whether `check_run_files` with
``repair=True`` fixes it safely.

What is checked:

* **records** (``rounds.jsonl``): a torn last line (a write cut by a crash) is dropped and
  its round redone; a last record that only lacks its newline gets it (otherwise the next
  append would glue onto it); a damaged line before the end, a round recorded twice or
  rounds out of order are errors (`CorruptRecordsError`).
* **label state** (``pool/label_state.npy`` and ``pool/pool.json``): a missing state while
  records exist, or a truncated / overwritten / foreign file, is an error that names the
  repair (`RunStateMismatchError`,
  `CorruptLabelStateError`) instead of the run silently going
  on from an empty state, or ``mmap length is greater than file size``; a lost
  ``pool.json`` is rebuilt from ``run.json``.
* **agreement**: each record's ``num_labelled`` / ``num_train`` / ``num_validation`` equal
  the label state's counts up to that round; each record's queried ids are labelled in the
  next round (or skipped by the annotator); labels of rounds no record covers are rolled
  back (the loop does the same on resume).
* **revisions** (``revisions/round-NNN``): every recorded round has one, with the label
  state's pool ids up to that round; a revision without a record is removed (it is
  written again when its round is redone).
* **final model**: a finished run has ``final_model/`` (written by the next run of the
  same command when missing).
* **stale temporary files** left by kills (``.label_state.npy.*.tmp``,
  ``revisions/.round-NNN.*``, ``cache/tmp*``, ``.final_model.*``, ``*.tmpPID``) are removed.

Call it only while holding the run's lock: it removes temporary files that a running
writer would still need.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from energizer_hf.errors import (
    CorruptLabelStateError,
    CorruptRecordsError,
    RunIntegrityError,
    RunStateMismatchError,
)
from energizer_hf.run import RunDir
from energizer_hf.utils import atomic_save_npy, atomic_write_json, repair_jsonl_tail, scan_jsonl

__all__ = [
    "IntegrityReport",
    "Problem",
    "RunFiles",
    "check_run_files",
    "read_label_state",
    "saves_final_model",
]

Severity = Literal["error", "warning", "info"]
_ROUND_DIR = re.compile(r"^round-(\d{3,})$")
_STALE_NAMES = (
    re.compile(r"^\..+\.tmp$"),  # utils._atomic_target: .<name>.<random>.tmp
    re.compile(r"^.+\.tmp\d+$"),  # ann.py: <name>.tmp<pid>
    re.compile(r"^\.round-\d{3,}\..+$"),  # RoundStore snapshots in progress
    re.compile(r"^\.final_model\..+$"),  # save_final_model in progress, or its .old copy
)
_STALE_IN_CACHE = re.compile(r"^tmp[A-Za-z0-9_]+$")  # datasets' map() before its rename


@dataclass(frozen=True)
class RunFiles:
    """The files of a run directory that the check reads (``RunDir`` names them).

    Attributes:
        root: the run directory.
        records: the round records (``rounds.jsonl``).
        label_state: the label state (``pool/label_state.npy``).
        pool_meta: the label state's metadata (``pool/pool.json``).
        run_info: the run's configuration record (``run.json``); rebuilds a lost
            ``pool_meta``. ``None``: not used.
        revisions: the round revisions' folder (``revisions/``); ``None``: not checked
            (a run without revisions, e.g. the seed ``Trainer``).
        final_model: the final model's folder (``final_model/``); ``None``: not checked
            (runs that do not save one).
        cache: the tokenization cache (``cache/``), for its stale temporary files.
    """

    root: Path
    records: Path
    label_state: Path
    pool_meta: Path
    run_info: Path | None = None
    revisions: Path | None = None
    final_model: Path | None = None
    cache: Path | None = None

    @classmethod
    def of(cls, run_dir: str | os.PathLike | RunDir, *, final_model: bool | None = None) -> RunFiles:
        """The files of a run directory as `RunDir` names them.

        Args:
            run_dir: the run directory.
            final_model: whether the run saves ``final_model/`` (then a finished run without
                one is reported); ``None``: as the run says (`saves_final_model`).
        """
        files = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        if final_model is None:
            final_model = saves_final_model(files)
        return cls(
            root=files.root,
            records=files.rounds,
            label_state=files.label_state,
            pool_meta=files.pool_meta,
            run_info=files.run_file,
            revisions=files.revisions,
            final_model=files.final_model if final_model else None,
            cache=files.cache,
        )


def saves_final_model(files: RunDir) -> bool:
    """Whether a run keeps ``final_model/``: ``save_final_model`` of its ``config.yaml``
    when it has one, else what ``run.json`` says (``info.final_model``; runs made before it
    was recorded: yes)."""
    try:
        import yaml

        if files.config_yaml.is_file():
            config = yaml.safe_load(files.config_yaml.read_text(encoding="utf-8")) or {}
            if isinstance(config, dict) and "save_final_model" in config:
                return config["save_final_model"] is not False
        if files.run_file.is_file():
            info = json.loads(files.run_file.read_text(encoding="utf-8")).get("info") or {}
            return info.get("final_model", True) is not False
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        pass
    return True


@dataclass(frozen=True)
class Problem:
    """One finding of the check.

    Attributes:
        code: a stable name (``records_torn_tail``, ``label_state_missing``, ...).
        severity: ``"error"`` (the run cannot go on), ``"warning"`` (repairable, or fixed by
            the next run), ``"info"``.
        path: the file or folder concerned.
        message: what is wrong.
        fix: what to do.
        repairable: ``check_run_files(..., repair=True)`` fixes it safely.
        error: the exception class raised for it by `IntegrityReport.raise_for_errors`.
    """

    code: str
    severity: Severity
    path: Path
    message: str
    fix: str
    repairable: bool = False
    error: type[RunIntegrityError] = RunIntegrityError

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message} {self.fix}"


@dataclass
class IntegrityReport:
    """The result of `check_run_files`.

    Attributes:
        run_dir: the run directory.
        problems: what is (still) wrong, errors first.
        repaired: what ``repair=True`` fixed.
        num_records: complete records in ``rounds.jsonl`` (after repairs).
        last_round: the last recorded round (``None``: no record).
        complete: the last record ends the run (a stopping reason other than waiting).
    """

    run_dir: Path
    problems: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    num_records: int = 0
    last_round: int | None = None
    complete: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        """No error is left (warnings and infos may be)."""
        return not self.errors

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def raise_for_errors(self) -> None:
        """Raise the first error's class, with every error in the message."""
        errors = self.errors
        if not errors:
            return
        lines = [f"The run directory '{self.run_dir}' is inconsistent:"]
        lines += [f"- {p.message} {p.fix}" for p in errors]
        raise errors[0].error("\n".join(lines), list(errors))

    def __str__(self) -> str:
        state = "complete" if self.complete else "in progress"
        head = (
            f"{self.run_dir}: {self.num_records} record(s), last round "
            f"{'-' if self.last_round is None else self.last_round}, {state}"
        )
        lines = [head]
        lines += [f"  repaired {p.code}: {p.message}" for p in self.repaired]
        lines += [f"  {p}" for p in self.problems]
        if not self.problems:
            lines.append("  ok: records, label state, revisions and final model agree")
        elif self.ok:
            lines.append("  no errors")
        return "\n".join(lines)


# ---------------------------------------------------------------------- label state
def read_label_state(path: str | os.PathLike, num_rows: int | None = None) -> np.ndarray:
    """Open a label state file memory-mapped, after checking that it is a complete
    ``.npy`` of the label state's dtype (and ``num_rows`` rows when given).

    Raises:
        CorruptLabelStateError: truncated, overwritten (not ``.npy``, a pickle), of
            another dtype or shape; the message says what to do.
    """
    from energizer_hf.pool import STATE_DTYPE

    path = Path(path)
    fix = (
        "Restore it from a backup, or start a new run from the last round revision "
        "(resume_from: <run_dir>/revisions/round-NNN with a new run_dir)."
    )
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            header = fh.tell()
    except (ValueError, OSError, SyntaxError, EOFError) as err:
        raise CorruptLabelStateError(
            f"The label state '{path}' is not a readable .npy file ({err}): it was overwritten "
            f"or damaged. {fix}"
        ) from None
    if dtype != STATE_DTYPE or len(shape) != 1 or fortran:
        raise CorruptLabelStateError(
            f"The label state '{path}' holds {dtype} of shape {shape}, not energizer_hf's label "
            f"state ({STATE_DTYPE}, one row per pool row): it was overwritten. {fix}"
        )
    expected = header + int(shape[0]) * STATE_DTYPE.itemsize
    size = path.stat().st_size
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise CorruptLabelStateError(
            f"The label state '{path}' is {what} ({size} bytes, expected {expected} for "
            f"{shape[0]} rows). {fix}"
        )
    if num_rows is not None and shape[0] != num_rows:
        raise CorruptLabelStateError(
            f"The label state '{path}' has {shape[0]} rows but its pool has {num_rows}: it "
            f"belongs to another dataset. {fix}"
        )
    return np.load(path, mmap_mode="r", allow_pickle=False)


# ---------------------------------------------------------------------- the check
class _Check:
    def __init__(self, files: RunFiles, repair: bool) -> None:
        self.f = files
        self.repair = repair
        self.report = IntegrityReport(run_dir=Path(files.root))

    def add(
        self,
        code: str,
        severity: Severity,
        path: Path,
        message: str,
        fix: str,
        *,
        repairable: bool = False,
        error: type[RunIntegrityError] = RunIntegrityError,
        do_repair: Any = None,
    ) -> None:
        problem = Problem(code, severity, Path(path), message, fix, repairable, error)
        if repairable and self.repair and do_repair is not None:
            do_repair()
            self.report.repaired.append(problem)
        else:
            self.report.problems.append(problem)

    # .................................................................. temporaries
    def stale_temporaries(self) -> None:
        f = self.f
        folders = {Path(f.root), Path(f.label_state).parent, Path(f.records).parent}
        if f.revisions is not None:
            folders.add(Path(f.revisions))
        root = Path(f.root)
        if root.is_dir():  # and the run directory's sub-folders (not the stale ones)
            folders |= {
                p
                for p in root.iterdir()
                if p.is_dir()
                and not p.is_symlink()
                and not any(r.match(p.name) for r in _STALE_NAMES)
            }
        found: list[Path] = []
        for folder in sorted(folders):
            if not folder.is_dir():
                continue
            is_cache = f.cache is not None and folder == Path(f.cache)
            for entry in folder.iterdir():
                name = entry.name
                if any(p.match(name) for p in _STALE_NAMES) or (
                    is_cache and _STALE_IN_CACHE.match(name)
                ):
                    found.append(entry)
        if not found:
            return

        def remove() -> None:
            for entry in found:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()

        shown = ", ".join(
            str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in found[:8]
        )
        self.add(
            "stale_temporary",
            "warning",
            root,
            f"{len(found)} temporary file(s) left by an interrupted run: {shown}"
            + (" ..." if len(found) > 8 else "")
            + ".",
            "They are removed (energizer-hf repair, or the next run).",
            repairable=True,
            do_repair=remove,
        )

    # .................................................................. records
    def records(self) -> list[dict] | None:
        path = Path(self.f.records)
        scan = scan_jsonl(path)
        if scan.bad_lines:
            first = scan.bad_lines[0]
            self.add(
                "records_garbled",
                "error",
                path,
                f"Line {first} of '{path}' is not a JSON record"
                + (f" (also lines {scan.bad_lines[1:6]})" if len(scan.bad_lines) > 1 else "")
                + ", and it is not the last line: the file was edited or damaged.",
                f"Restore it from a backup, or delete line {first} and the lines after it (those "
                "rounds are redone on the next run; their labels are rolled back).",
                error=CorruptRecordsError,
            )
            return None
        if scan.tail == "torn":
            self.add(
                "records_torn_tail",
                "warning",
                path,
                f"The last line of '{path}' is a torn write (the run was killed while writing "
                f"it); the {len(scan.records)} record(s) before it are complete.",
                "It is dropped and its round redone.",
                repairable=True,
                do_repair=lambda: repair_jsonl_tail(path),
            )
        elif scan.tail == "unterminated":
            self.add(
                "records_unterminated",
                "warning",
                path,
                f"The last record of '{path}' lacks its newline: the next record would be glued "
                "onto it.",
                "The newline is added.",
                repairable=True,
                do_repair=lambda: repair_jsonl_tail(path),
            )
        records = scan.records
        bad = [
            (line, r)
            for line, r in zip(scan.lines, records)
            if not isinstance(r.get("round"), int) or isinstance(r.get("round"), bool)
        ]
        if bad:
            self.add(
                "records_garbled",
                "error",
                path,
                f"Line {bad[0][0]} of '{path}' is not a round record (no integer 'round').",
                f"Restore the file from a backup, or delete line {bad[0][0]} and the lines after it.",
                error=CorruptRecordsError,
            )
            return None
        rounds = [int(r["round"]) for r in records]
        for i in range(1, len(rounds)):
            if rounds[i] != rounds[i - 1] + 1:
                if rounds[i] in rounds[:i]:
                    first_line = scan.lines[rounds.index(rounds[i])]
                    message = (
                        f"Round {rounds[i]} is recorded twice in '{path}' (lines {first_line} and "
                        f"{scan.lines[i]}): two processes ran on this run directory at once."
                    )
                else:
                    message = (
                        f"'{path}' jumps from round {rounds[i - 1]} to round {rounds[i]} on line "
                        f"{scan.lines[i]}."
                    )
                self.add(
                    "records_out_of_order",
                    "error",
                    path,
                    message,
                    f"The labels cannot be trusted past line {scan.lines[i] - 1}: start a new run "
                    "directory, or keep only the lines before it (the later rounds are redone).",
                    error=CorruptRecordsError,
                )
                return None
        self.report.num_records = len(records)
        if records:
            last = records[-1]
            self.report.last_round = int(last["round"])
            self.report.complete = (
                bool(last.get("stop_reason")) and last.get("stop_reason") != "awaiting_annotations"
            )
        return records

    # .................................................................. label state
    def label_state(self, records: list[dict] | None) -> np.ndarray | None:
        f = self.f
        state_path, meta_path = Path(f.label_state), Path(f.pool_meta)
        has_records = bool(records)
        if not state_path.exists():
            if has_records:
                self.add(
                    "label_state_missing",
                    "error",
                    state_path,
                    f"The label state '{state_path}' is missing, but '{f.records}' records "
                    f"{len(records)} round(s): going on would start from an empty labelled set "
                    "that disagrees with the records.",
                    self._restore_fix(records),
                    error=RunStateMismatchError,
                )
            return None
        meta = None
        meta_problem = None
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                if not isinstance(meta, dict) or "num_rows" not in meta:
                    meta_problem = "is not a pool description"
                    meta = None
            except (OSError, ValueError):
                meta_problem = "is damaged"
        else:
            meta_problem = "is missing"
        num_rows = int(meta["num_rows"]) if meta else None
        try:
            state = read_label_state(state_path, num_rows)
        except CorruptLabelStateError as err:
            self.add(
                "label_state_corrupt",
                "error",
                state_path,
                str(err).split(" Restore it")[0],
                self._restore_fix(records),
                error=CorruptLabelStateError,
            )
            return None
        if meta_problem:
            rebuilt = self._meta_from_run_info(len(state))
            self.add(
                "pool_meta_missing",
                "warning" if rebuilt else "error",
                meta_path,
                f"The pool description '{meta_path}' {meta_problem}: the label state cannot be "
                "matched to its dataset.",
                f"It is rebuilt from '{f.run_info}'." if rebuilt else self._restore_fix(records),
                repairable=rebuilt is not None,
                error=CorruptLabelStateError,
                do_repair=(lambda: atomic_write_json(meta_path, rebuilt)) if rebuilt else None,
            )
        return state

    def _meta_from_run_info(self, rows: int) -> dict | None:
        if self.f.run_info is None or not Path(self.f.run_info).exists():
            return None
        try:
            config = json.loads(Path(self.f.run_info).read_text(encoding="utf-8")).get("config", {})
        except (OSError, ValueError, AttributeError):
            return None
        fingerprint, pool_rows = config.get("pool_fingerprint"), config.get("pool_rows")
        if not fingerprint or pool_rows != rows:
            return None
        return {"format_version": 1, "fingerprint": fingerprint, "num_rows": rows}

    def _restore_fix(self, records: list[dict] | None) -> str:
        rounds = self._revision_rounds()
        if rounds:
            last = rounds[-1]
            return (
                "Restore it from a backup; or start a new run from the last saved round: "
                f"resume_from: {self.f.revisions}/round-{last:03d} with a new run_dir; or delete "
                f"'{self.f.records}' to run this directory again from scratch."
            )
        return (
            f"Restore it from a backup, or delete '{self.f.records}' (and the label state) to run "
            "this directory again from scratch."
        )

    # .................................................................. agreement
    def agreement(self, records: list[dict], state: np.ndarray) -> None:
        rounds = np.asarray(state["round"])
        split = np.asarray(state["split"])
        labelled = rounds >= 0
        last = int(records[-1]["round"])
        # counts of labels per round, cumulated: label rounds can exceed the last record
        top = int(rounds.max()) if labelled.any() else -1
        size = max(top, last) + 2
        per_round = np.bincount(rounds[labelled], minlength=size)
        per_round_val = np.bincount(rounds[labelled & (split == 1)], minlength=size)
        upto = np.cumsum(per_round)
        upto_val = np.cumsum(per_round_val)
        for record in records:
            r = int(record["round"])
            want = {
                "num_labelled": int(upto[r]),
                "num_validation": int(upto_val[r]),
                "num_train": int(upto[r] - upto_val[r]),
            }
            wrong = {
                k: (record.get(k), v) for k, v in want.items() if k in record and record[k] != v
            }
            if wrong:
                k, (said, has) = next(iter(wrong.items()))
                self.add(
                    "records_state_mismatch",
                    "error",
                    Path(self.f.label_state),
                    f"Round {r}'s record says {k}={said}, but the label state has {has} up to round "
                    f"{r}: the label state is not the one these records were made with (replaced, "
                    "restored from another copy, or edited).",
                    self._restore_fix(records),
                    error=RunStateMismatchError,
                )
                return
            queried = np.asarray(record.get("queried_ids") or [], dtype=np.int64)
            if queried.size:
                if queried.min() < 0 or queried.max() >= rounds.size:
                    bad_ids = queried[(queried < 0) | (queried >= rounds.size)][:5].tolist()
                    self.add(
                        "records_state_mismatch",
                        "error",
                        Path(self.f.records),
                        f"Round {r}'s record queried pool ids {bad_ids} that the label state "
                        f"({rounds.size} rows) does not have.",
                        self._restore_fix(records),
                        error=RunStateMismatchError,
                    )
                    return
                got = rounds[queried]
                early = queried[(got >= 0) & (got <= r)]
                labelled_next = int(np.count_nonzero(got == r + 1))
                skipped = int(record.get("num_skipped") or 0)
                if early.size or labelled_next != queried.size - skipped:
                    what = (
                        f"ids {early[:5].tolist()} were already labelled before round {r + 1}"
                        if early.size
                        else f"{labelled_next} of its {queried.size} queried ids are labelled in "
                        f"round {r + 1} ({skipped} skipped)"
                    )
                    self.add(
                        "records_state_mismatch",
                        "error",
                        Path(self.f.label_state),
                        f"Round {r}'s record and the label state disagree: {what}.",
                        self._restore_fix(records),
                        error=RunStateMismatchError,
                    )
                    return
        # labels of rounds that no record covers: the loop rolls them back on resume
        allowed = last if self.report.complete or not records[-1].get("queried_ids") else last + 1
        extra = np.flatnonzero(rounds > allowed)
        if extra.size:
            path = Path(self.f.label_state)

            def rollback() -> None:
                new = np.array(state, copy=True)
                new["round"][extra] = -1
                new["split"][extra] = 0
                new["label"][extra] = -1
                atomic_save_npy(path, new)

            self.add(
                "unrecorded_labels",
                "warning",
                path,
                f"{extra.size} label(s) of round(s) {sorted(set(rounds[extra].tolist()))[:5]} have "
                f"no record (the run stopped after labelling, before recording the round).",
                "They are rolled back and the round redone.",
                repairable=True,
                do_repair=rollback,
            )

    # .................................................................. revisions
    def _revision_rounds(self) -> list[int]:
        folder = self.f.revisions
        if folder is None or not Path(folder).is_dir():
            return []
        out = []
        for entry in Path(folder).iterdir():
            m = _ROUND_DIR.match(entry.name)
            if m and entry.is_dir() and (entry / "README.md").exists():
                out.append(int(m.group(1)))
        return sorted(out)

    def revisions(self, records: list[dict], state: np.ndarray | None) -> None:
        folder = self.f.revisions
        if folder is None or not Path(folder).is_dir():
            return
        folder = Path(folder)
        have = self._revision_rounds()
        recorded = [int(r["round"]) for r in records]
        orphans = [r for r in have if not recorded or r > recorded[-1]]
        for r in orphans:
            path = folder / f"round-{r:03d}"
            self.add(
                "orphan_revision",
                "warning",
                path,
                f"The revision '{path.name}' has no record (its round was not recorded as complete).",
                "It is removed and written again when its round is redone.",
                repairable=True,
                do_repair=lambda p=path: shutil.rmtree(p, ignore_errors=True),
            )
        missing = [r for r in recorded if r not in have]
        if missing and have:
            self.add(
                "missing_revision",
                "warning",
                folder,
                f"Recorded round(s) {missing[:10]} have no revision in '{folder}' (the run was "
                "stopped after recording them).",
                "Run the same command again: the missing revisions are written.",
            )
        if state is None:
            return
        rounds = np.asarray(state["round"])
        for r in have:
            if r in orphans:
                continue
            ids = _revision_pool_ids(folder / f"round-{r:03d}")
            if ids is None:
                continue
            expected = np.flatnonzero((rounds >= 0) & (rounds <= r))
            if ids.size != expected.size or not np.array_equal(np.sort(ids), expected):
                self.add(
                    "revision_mismatch",
                    "error",
                    folder / f"round-{r:03d}",
                    f"The revision 'round-{r:03d}' has {ids.size} labelled rows, the label state "
                    f"{expected.size} up to round {r}"
                    + ("" if ids.size != expected.size else " (other pool ids)")
                    + ": one of them is not this run's.",
                    f"If the label state is right, delete '{folder / f'round-{r:03d}'}' and run "
                    "again to write it anew; otherwise restore the label state from that revision "
                    "(resume_from with a new run_dir).",
                    error=RunStateMismatchError,
                )

    # .................................................................. final model
    def final_model(self) -> None:
        path = self.f.final_model
        if path is None or not self.report.complete:
            return
        path = Path(path)
        if not (path / "config.json").exists():
            self.add(
                "missing_final_model",
                "warning",
                path,
                f"The run is complete but has no final model in '{path}' (it was stopped before "
                "saving it).",
                "Run the same command again: the final model is written.",
            )

    def run(self) -> IntegrityReport:
        self.stale_temporaries()
        records = self.records()
        state = self.label_state(records) if records is not None else None
        if records and state is not None:
            self.agreement(records, state)
        if records is not None:
            self.revisions(records, state)
        self.final_model()
        order = {"error": 0, "warning": 1, "info": 2}
        self.report.problems.sort(key=lambda p: order[p.severity])
        return self.report


def _revision_pool_ids(directory: Path) -> np.ndarray | None:
    """The ``pool_id`` column of a ``save_to_disk`` revision, read memory-mapped (no
    ``datasets`` import); ``None`` when it cannot be read (reported elsewhere)."""
    import pyarrow as pa

    try:
        state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        files = [directory / d["filename"] for d in state.get("_data_files", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    parts = []
    try:
        for file in files:
            with pa.memory_map(str(file)) as source:
                table = pa.ipc.open_stream(source).read_all()
            if "pool_id" not in table.column_names:
                return None
            parts.append(table.column("pool_id").to_numpy())
    except (OSError, pa.ArrowInvalid):
        return None
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)


def check_run_files(files: RunFiles, *, repair: bool = False) -> IntegrityReport:
    """Check a run directory's files; with ``repair`` fix what is safely repairable.

    Args:
        files: the paths (``RunDir`` provides them).
        repair: remove stale temporaries, drop a torn last record, add a missing newline,
            rebuild a lost ``pool.json``, roll back unrecorded labels and remove revisions
            without a record. Nothing else is ever changed.

    Returns:
        The `IntegrityReport`; call `raise_for_errors` to
        refuse an inconsistent directory.
    """
    return _Check(files, repair).run()
