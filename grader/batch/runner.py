"""Grade a roster: a bounded number of workers at once, each submission's record written
as soon as it ends, a re-run skipping what is already graded (see ``resolve`` for the rule).

Every submission runs in a worker process (``grader.batch.worker``) in its own session: a
hang past ``timeout_s`` or a crash ends that worker's whole process tree and is recorded as
status ``error`` with its reason, and the batch goes on. Ctrl-C (KeyboardInterrupt) stops the
running workers cleanly; the records already written stay, the unfinished ones are not
written, so the next run grades exactly those.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit, urlunsplit

from grader import __version__
from grader.records import (
    SubmissionRecord, SubmissionStatus, append_event, read_record, read_records, record_path,
    status_of, write_record,
)
from grader.batch.handout import capture_baseline, resolve_source, save_baseline
from grader.batch.resolve import resolve_tip
from grader.batch.roster import RosterEntry, Shard, load_roster
from grader.batch.job import WorkerJob, WorkerResult
from grader.errors import FetchError, MachineError, UsageError
from grader.identity import grader_identity
from grader.models import GraderIdentity
from grader.pipeline import DEFAULT_RUBRIC, GradeRequest, validate
from grader.rubric import Rubric
from grader.sandbox import detect
from grader.sandbox.limits import Limits
from grader.stack.process import kill_tree

LOG_NAME = "batch-log.jsonl"
# --timeout's default, past the rubric's submission limit: a backstop for a stuck grader (the
# grading stops itself at its limit, failing the student's slow checks, well before).
TIMEOUT_MARGIN_S = 300.0
STOP_GRACE_S = 30.0  # how long a worker may take to stop its stacks before its tree is killed
FIRST_GRADING = "not graded yet"


def default_jobs() -> int:
    """Half the usable cores: each grading already runs its six scenarios at once."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


@dataclass(frozen=True)
class BatchOptions:
    roster: Path
    out: Path
    rubric_path: Path = DEFAULT_RUBRIC
    only: frozenset[str] | None = None  # a roster row's own ``exercises`` take precedence
    jobs: int = field(default_factory=default_jobs)
    timeout_s: float | None = None  # per submission; None: the rubric's submission limit + TIMEOUT_MARGIN_S
    shard: Shard | None = None
    backend: str = "local"
    # A class is graded unattended: every protection, unless the user allows less (--allow-unsandboxed).
    require_sandbox: bool = True
    handout: str | None = None  # the handout repository, baseline of near-copies (else the rubric's)
    force: bool = False  # --force: regrade every row, whatever its record says
    # --student: grade only these rows, each regraded whatever its record says (None: every row)
    students: frozenset[str] | None = None
    # How a worker is started (tests substitute a stand-in); JOB and RESULT paths are appended.
    worker_command: tuple[str, ...] = (sys.executable, "-m", "grader.batch.worker")


@dataclass
class BatchResult:
    records: list[SubmissionRecord]  # this run's rows, graded now or kept from before
    graded: int = 0
    skipped: int = 0
    # Student -> why a row that had a record was graded again (a first grading is not listed).
    regraded: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(r.status is SubmissionStatus.ERROR for r in self.records)


class BatchProgress(Protocol):
    def planned(self, total: int) -> None: ...

    def started(self, student_id: str) -> None: ...

    def status(self, student_id: str, text: str) -> None: ...

    def finished(self, record: SubmissionRecord, skipped: bool) -> None: ...


class SilentBatchProgress:
    def planned(self, total: int) -> None:
        pass

    def started(self, student_id: str) -> None:
        pass

    def status(self, student_id: str, text: str) -> None:
        pass

    def finished(self, record: SubmissionRecord, skipped: bool) -> None:
        pass


def prepare(options: BatchOptions) -> tuple[list[RosterEntry], Rubric]:
    """Everything checked before anything runs: roster, rubric, --only, --backend, --jobs, --timeout."""
    if options.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if options.timeout_s is not None and options.timeout_s <= 0:
        raise UsageError("--timeout must be positive")
    entries = load_roster(options.roster)
    rubric = validate(GradeRequest(source="", rubric_path=options.rubric_path, only=options.only,
                                   backend=options.backend))
    if options.require_sandbox and options.backend == "local":
        try:
            detect(require=True)  # refused once, here, not once per submission
        except MachineError as exc:
            raise MachineError(f"{exc} (pass --allow-unsandboxed to grade without it)") from None
    if options.students is not None:
        unknown = sorted(options.students - {entry.student_id for entry in entries})
        if unknown:
            raise UsageError(f"--student {', '.join(unknown)}: not in the roster {options.roster}")
        entries = [entry for entry in entries if entry.student_id in options.students]
    if options.shard is not None:
        entries = [entry for entry in entries if options.shard.holds(entry.student_id)]
    return entries, rubric


def regrade_reason(previous: SubmissionRecord | None, entry: RosterEntry, tip: str | None, rubric: Rubric,
                   identity: GraderIdentity, only: tuple[str, ...] | None, backend: str) -> str | None:
    """Why the row must be graded (again), or None when ``previous`` still stands: the skip
    rule (documented in ``grader.batch.resolve``)."""
    if previous is None:
        return FIRST_GRADING
    if previous.status is SubmissionStatus.ERROR:
        return "could not be graded last time"
    if tip is None:
        return "its commit cannot be named without cloning"
    if previous.resolved_tip != tip:
        return f"new commit {tip[:8]} (graded {str(previous.resolved_tip)[:8]})"
    if (previous.ref, previous.deadline) != (entry.ref, entry.deadline):
        return "its ref or deadline changed"
    if previous.only != only:
        return "other exercises asked for"
    if previous.backend != backend:
        return f"backend {backend} asked for (graded on {previous.backend})"
    if (previous.rubric_name, previous.rubric_version) != (rubric.name, rubric.version):
        return f"rubric {rubric.name} {rubric.version} (graded with {previous.rubric_name} {previous.rubric_version})"
    return _identity_change(previous.identity, identity)


def _identity_change(graded: GraderIdentity | None, now: GraderIdentity) -> str | None:
    if graded is None:
        return "graded before the grader recorded its identity"
    if graded.version != now.version:
        return f"grader version {now.version} (graded by {graded.version})"
    if graded.code != now.code:
        return f"grader code changed ({graded.code[:8]} -> {now.code[:8]})"
    if graded.rubric != now.rubric:
        return f"rubric content changed ({graded.rubric[:8]} -> {now.rubric[:8]})"
    return None


def redact(source: str) -> str:
    """``source`` without any password (tokens in URLs never reach records or logs)."""
    parts = urlsplit(source)
    if "://" not in source or parts.password is None:
        return source
    netloc = f"{parts.username}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class BatchRunner:
    def __init__(self, options: BatchOptions, progress: BatchProgress | None = None) -> None:
        self.options = options
        self.progress = progress or SilentBatchProgress()
        self._stop = threading.Event()
        self._log = options.out / LOG_NAME

    def run(self) -> BatchResult:
        entries, rubric = prepare(self.options)
        self._identity = grader_identity(rubric)
        self._capture_handout(rubric)
        self._timeout_s = self.options.timeout_s or Limits.from_settings(rubric.limits).submission_s + TIMEOUT_MARGIN_S
        batch_only = tuple(sorted(self.options.only)) if self.options.only is not None else None
        (self.options.out / "logs").mkdir(parents=True, exist_ok=True)
        self.progress.planned(len(entries))
        result = BatchResult(records=[])
        lock = threading.Lock()

        def process(entry: RosterEntry) -> None:
            if self._stop.is_set():
                return
            only = entry.exercises if entry.exercises is not None else batch_only
            record, why = self._process(entry, rubric, only)
            if record is None:
                return
            with lock:
                result.records.append(record)
                if why is None:
                    result.skipped += 1
                else:
                    result.graded += 1
                    if why != FIRST_GRADING:
                        result.regraded[entry.student_id] = why

        with ThreadPoolExecutor(max_workers=self.options.jobs, thread_name_prefix="batch") as pool:
            futures = [pool.submit(process, entry) for entry in entries]
            try:
                for future in as_completed(futures):
                    future.result()
            except KeyboardInterrupt:
                self._stop.set()
                for future in futures:
                    future.cancel()
                wait(futures)
                append_event(self._log, "interrupted", "")
                raise
        result.records.sort(key=lambda r: r.student_id)
        return result

    def _capture_handout(self, rubric: Rubric) -> None:
        """Fingerprint the handout into the batch folder, before any grading (a wrong URL stops here)."""
        given = self.options.handout or (resolve_source(rubric.handout, self.options.rubric_path)
                                         if rubric.handout else None)
        if given is None:
            return
        try:
            baseline = capture_baseline(given, redact(given))
        except FetchError as exc:
            raise UsageError(f"handout {redact(given)}: {exc}") from None
        save_baseline(self.options.out, baseline)

    def _process(self, entry: RosterEntry, rubric: Rubric,
                 only: tuple[str, ...] | None) -> tuple[SubmissionRecord | None, str | None]:
        """The row's record and why it was graded now (None: kept from before)."""
        tip = resolve_tip(entry.repo_url, entry.ref)
        previous = read_record(record_path(self.options.out, entry.student_id))
        why = regrade_reason(previous, entry, tip, rubric, self._identity, only, self.options.backend)
        if previous is not None and (self.options.force or self.options.students is not None):
            why = "regrade asked for" + (f" ({why})" if why else "")
        if why is None:
            assert previous is not None
            append_event(self._log, "skipped", entry.student_id, commit=previous.commit_sha)
            self.progress.finished(previous, skipped=True)
            return previous, None
        self.progress.started(entry.student_id)
        append_event(self._log, "started", entry.student_id, tip=tip, why=why)
        record = self._grade(entry, tip, rubric, only)
        if record is None:  # interrupted: nothing written, the next run grades it
            append_event(self._log, "stopped", entry.student_id)
            return None, None
        write_record(self.options.out, record)
        append_event(self._log, record.status.value, entry.student_id, commit=record.commit_sha,
                     points=record.points, reason=record.reason, duration_s=record.duration_s)
        self.progress.finished(record, skipped=False)
        return record, why

    def _grade(self, entry: RosterEntry, tip: str | None, rubric: Rubric,
               only: tuple[str, ...] | None) -> SubmissionRecord | None:
        started_at = datetime.now(timezone.utc)
        started = time.monotonic()
        job = WorkerJob(student_id=entry.student_id, source=entry.repo_url, ref=entry.ref,
                        deadline=entry.deadline, rubric_path=str(self.options.rubric_path.resolve()),
                        only=only, backend=self.options.backend, require_sandbox=self.options.require_sandbox)
        with tempfile.TemporaryDirectory(prefix="grade-batch-job-") as tmp:
            job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
            job_path.write_text(job.model_dump_json(), encoding="utf-8")
            outcome = self._run_worker(entry.student_id, job_path, result_path, started)
            if outcome is None:
                return None
            result, failure = outcome
        report = result.report if result else None
        return SubmissionRecord(
            student_id=entry.student_id, source=redact(entry.repo_url), ref=entry.ref,
            deadline=entry.deadline, only=only, backend=self.options.backend, status=status_of(report),
            reason=failure or (result.reason if result else None),
            commit_sha=(result.commit_sha if result else None), resolved_tip=tip,
            rubric_name=rubric.name, rubric_version=rubric.version, grader_version=__version__,
            identity=self._identity, fingerprint=result.fingerprint if result and report else (),
            report=report, started_at=started_at, finished_at=datetime.now(timezone.utc),
            duration_s=round(time.monotonic() - started, 1),
        )

    def _run_worker(self, student_id: str, job_path: Path, result_path: Path,
                    started: float) -> tuple[WorkerResult | None, str | None] | None:
        """(result, failure reason); None when the batch is being stopped."""
        log_path = self.options.out / "logs" / f"{student_id}.log"
        with open(log_path, "ab") as log:
            log.write(f"--- {datetime.now().astimezone().isoformat(timespec='seconds')} grading\n".encode())
            log.flush()
            proc = subprocess.Popen([*self.options.worker_command, str(job_path), str(result_path)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                    start_new_session=True)
            reader = threading.Thread(target=self._read_status, args=(student_id, proc.stdout),
                                      daemon=True, name=f"status-{student_id}")
            reader.start()
            limit = started + self._timeout_s
            failure = None
            while proc.poll() is None:
                if self._stop.is_set():
                    self._end(proc)
                    return None
                if time.monotonic() > limit:
                    self._end(proc)
                    failure = (f"grading took longer than the {self._timeout_s:g} s time limit "
                               "(--timeout): stopped")
                    break
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
            reader.join(timeout=5)
        if failure:
            return None, failure
        if self._stop.is_set() and proc.returncode != 0:
            return None
        if proc.returncode == 0 and result_path.exists():
            try:
                return WorkerResult.model_validate_json(result_path.read_text(encoding="utf-8")), None
            except ValueError as exc:
                return None, f"grader worker wrote an unreadable result: {str(exc).splitlines()[0]}"
        return None, f"grader worker crashed (exit {proc.returncode}): {_last_line(log_path)}"

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (the worker stops its stacks), then the whole tree after a grace period."""
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        kill_tree(proc)

    def _read_status(self, student_id: str, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        for raw in stream:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("stage"), str):
                self.progress.status(student_id, event["stage"])


def _last_line(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        return "no output"
    return lines[-1][:300] if lines else "no output"


def run_batch(options: BatchOptions, progress: BatchProgress | None = None) -> BatchResult:
    """Grade the roster (or its shard) into ``options.out``; raises KeyboardInterrupt when stopped."""
    return BatchRunner(options, progress).run()


__all__ = ["BatchOptions", "BatchProgress", "BatchResult", "SilentBatchProgress", "default_jobs",
           "read_records", "regrade_reason", "run_batch"]
