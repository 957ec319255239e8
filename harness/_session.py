"""A run of evals without pytest: the pool, the journal, the connections, the budgets, the local server, progress.

``Session`` is what the pytest plugin adapts (``harness.plugin``: eval files become items whose rows come from here)
and what ``harness.run`` drives for scripts. It sends every case × variant's samples (ahead, on its thread pool,
when live), journals each row as it ends so ``--resume`` can continue, and at ``finish`` checks results == planned,
aggregates once and writes the reports. It reads no environment and no command line: its ``Settings`` say it all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PromptVCRError
from .load import _evals as evals
from .load import _project_models as project_models
from .record._cassettes import RecordMode
from .report import _summary as report
from .run import _batch as batch_phase
from .run import _batch_log as batch_log
from .run import _client as client
from .run import _journal as journal
from .run import _preflight
from .run import _runner as runner
from .run import _scheduler as scheduler
from .run._progress import Progress
from .run._remedy import Advise
from .run._row import Outcome, Row
from .testing import local
from .tokens import _models as models

Item = tuple[str, str, str]  # eval, variant, case


@dataclass(frozen=True)
class Settings:
    root: Path
    record_mode: RecordMode
    cassettes_dir: Path
    reports_dir: Path
    profile: str | None = None  # the key profile of profiles.yaml (None: its default)
    local_url: str | None = None  # a local model server running already (else one is started when needed)
    say: Callable[[str], None] | None = None  # where progress lines go (None: nowhere)
    progress_every: float = 5.0
    run_dir: Path | None = None  # the run --resume continues, or (a pytest-xdist worker) the controller's
    resume: bool = False
    worker: str | None = None  # a pytest-xdist worker's id: it journals into ``run_dir``, the controller reports
    advise: Advise | None = None  # a missing recording's advice in the edge's words (harness.cli._remedies)
    batch: bool = False  # `--batch`: every eval recorded through the Batch API (else those whose file says `batch`)


@dataclass
class Finished:
    """What ``Session.finish`` made of the rows; ``problem`` is set when results != planned or no report could be
    made; ``failed``: a gate failed on a variant that is not expected to fall short."""

    rows: list[Row] = field(default_factory=list)
    summaries: list[report.VariantSummary] = field(default_factory=list)
    run_dir: Path | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s.failed for s in self.summaries)


class Session:
    def __init__(self, settings: Settings) -> None:
        project_models.use(settings.root)  # the project's models.yaml, if any, over the shipped registry
        self.settings = settings
        self.run_dir = settings.run_dir
        self.live = settings.record_mode != RecordMode.NONE
        continued = settings.run_dir if settings.resume else None  # the run --resume continues
        self.resumed = journal.Resumed.of(continued) if continued else None
        every = settings.progress_every
        self.progress = Progress(settings.say, every) if self.live and settings.say is not None else None
        self.budgets: dict[str, _preflight.Budget] = {}
        self.plans: dict[Item, _preflight.CallPlan] = {}
        self._lock = threading.Lock()
        self._local: str | None = None
        self._stack = ExitStack()
        self.connections = client.Connections(not self.live, self.local_url)
        self.pool = scheduler.Pool(lambda: self.connections.workers(spare=not self.budgets))
        self.journal: journal.Journal | None = None
        self.options = runner.RunOptions(
            record_mode=settings.record_mode,
            cassettes_dir=settings.cassettes_dir,
            connections=self.connections,
            budgets=self.budgets,
            on_row=self._sample_ended,
            resume=settings.resume,
            done=journal.kept(continued) if continued else {},
            rewritten=journal.rewritten(continued) if continued else frozenset(),
            on_save=self._cassette_saved,
            advise=settings.advise,
            plans=self.plans,
        )
        self.judged: set[Item] = set()  # cases whose rows are journaled once judged
        self.jobs: dict[str, scheduler.Job] = {}  # by item key, started ahead (see harness.run._scheduler)
        self.rows: list[Row] = []
        self.planned: dict[Item, int] = {}  # the items that ran → their samples
        self.durations: dict[tuple[str, str, str], float] = {}  # (eval, case, variant) → the item's time, for junit
        self.eval_paths: dict[str, str] = {}
        self.collected: dict[str, evals.Eval] = {}  # loaded once (pytest-xdist's controller loads none)
        # --batch (a resumed batched run stays one), or the evals whose file says `batch`
        self.batches = batch_phase.Batching(settings.batch or (continued is not None and batch_log.exists(continued)))

    # -- before anything is sent -------------------------------------------------------------------------------------

    def start_journal(self, argv: list[str], selection: journal.Selection) -> None:
        """A live run's folder and results journal, before anything is sent (workers: the controller's folder)."""
        if not self.live:
            return
        worker = self.settings.worker
        if worker is not None and self.run_dir is not None:
            self.journal = journal.Journal(self.run_dir, f".{worker}")
            return
        if self.run_dir is None:
            self.run_dir = report.new_run_dir(self.settings.reports_dir)
            journal.start(self.run_dir, self.options.record_mode, argv, selection)
            if self.batches.every:  # so that `--resume` of a run stopped before its batches continues it batched
                batch_log.BatchLog(self.run_dir).save()
        else:
            journal.finish(self.run_dir, "running")
            for ledger in self.run_dir.glob("budget-*.json"):  # a killed worker's holds: planned again from the rows
                ledger.unlink()
        self.journal = journal.Journal(self.run_dir)

    def add_eval(self, ev: evals.Eval) -> None:
        other = self.eval_paths.get(ev.name)
        if other is not None and other != str(ev.path):  # they would share cassettes and reports
            raise PromptVCRError(f"{ev.path}: eval name {ev.name!r} is also the name of {other}: rename one")
        self.eval_paths[ev.name] = str(ev.path)
        self.collected[ev.name] = ev

    def planned_runs(self, ev: evals.Eval, runs: Sequence[evals.CaseRun]) -> list[evals.CaseRun]:
        """The runs of ``ev`` this session sends: a resumed run's plan exactly (its items, its samples)."""
        if self.resumed is None:
            return list(runs)
        if not self.resumed.has_eval(ev.name, ev.path):
            return []
        planned = [(run, self.resumed.samples((ev.name, run.variant.name, run.case.id), run.samples)) for run in runs]
        return [dataclasses.replace(run, samples=n) for run, n in planned if n is not None]

    def preflight(self, ev: evals.Eval, runs: Sequence[evals.CaseRun]) -> list[str]:
        """Before a live run: refuse (PromptVCRError) an eval whose worst case exceeds its budget, a local model not
        installed; the warnings to show (retired models)."""
        if self.progress is not None:
            self.progress.plan(sum(run.samples - len(self.kept(run)) for run in runs))
        if not self.live:
            return []
        batched = self.batches.of(ev) is not None  # priced, and budgeted, at the Batch API's prices
        if batched:
            batch_phase.check(runs, self.settings.worker)
        if ev.budget_usd is not None:
            plans = {(run.eval_name, run.variant.name, run.case.id): _preflight.plan(run, batched) for run in runs}
            self.plans.update(plans)
            problem = _preflight.budget_problem(ev, list(plans.values()))
            if problem:
                raise PromptVCRError(problem)
            # a resumed run's answers were paid for
            paid = sum(row.cost_usd or 0.0 for run in runs for row in self.kept(run).values() if not row.replayed)
            self.budgets[ev.name] = self._budget(ev.name, ev.budget_usd, paid)
        self._check_local_models(runs)
        warnings = (models.shutdown_warning(model, dt.date.today()) for model in sorted({run.model for run in runs}))
        return [warning for warning in warnings if warning]

    def _budget(self, eval_name: str, limit_usd: float, paid_usd: float) -> _preflight.Budget:
        """The eval's budget: in memory, or — for the pytest-xdist workers of a run, which each plan every eval —
        one ledger in the run's folder that they all book in, so the budget holds for the run."""
        if self.settings.worker is None or self.run_dir is None:
            return _preflight.Budget(limit_usd, spent_usd=paid_usd)
        return _preflight.Budget.shared(limit_usd, self.run_dir / f"budget-{eval_name}.json", paid_usd)

    def _check_local_models(self, runs: Sequence[evals.CaseRun]) -> None:
        """Each local model a recording names is installed (else the command that installs it). Not when a server is
        given or already answers: that one serves what it serves."""
        wanted = {run.model for run in runs if run.variant.endpoint.kind == "local"} & set(local.aliases())
        if wanted and not self.settings.local_url and not local.answers(evals.DEFAULT_LOCAL_URL):
            for model in sorted(wanted):
                local.check_installed(model)

    def write_plan(self, runs: Sequence[evals.CaseRun]) -> None:
        """The items of a new live run, before anything is sent: what `--resume` will continue, and only that."""
        if not self.live or self.run_dir is None or self.resumed is not None or not runs:
            return
        plan = journal.Plan(
            {(run.eval_name, run.variant.name, run.case.id): run.samples for run in runs},
            {run.eval_name: self.eval_paths[run.eval_name] for run in runs},
        )
        journal.write_plan(self.run_dir, plan, f".{self.settings.worker}" if self.settings.worker else "")

    # -- sending -----------------------------------------------------------------------------------------------------

    def start_ahead(self, runs: Sequence[tuple[str, evals.CaseRun]]) -> None:
        """Every case's samples queued now, in this order (see harness.run._scheduler); keyed as ``rows`` asks.
        The batched evals' requests first go through the Batch API (harness.run._batch), and then replay."""
        how = {run.eval_name: self.batches.of(self.collected.get(run.eval_name)) for _, run in runs}
        batching = {name: options for name, options in how.items() if options is not None}
        if batching and self.run_dir is not None:
            say = self.settings.say or (lambda line: None)
            phase = batch_phase.Phase(self.options, self.run_dir, say, self._sample_ended, batching)
            self.batches.record([run for _, run in runs if run.eval_name in batching], phase, self.local_url)
        for key, run in runs:
            if run.judges:
                self.judged.add((run.eval_name, run.variant.name, run.case.id))
            if not self.batches.settle(key, run):
                self.jobs[key] = self._job(key, run)
                self.jobs[key].start()

    def _job(self, key: str, run: evals.CaseRun) -> scheduler.Job:
        """The case's job: started ahead, or made now (a batched eval's replays what its batch phase recorded)."""
        options = self.batches.options_for(run, self.options)
        return self.jobs.pop(key, None) or scheduler.Job(runner.RunningCase(run, options), self.pool)

    def rows_of(self, key: str, run: evals.CaseRun, ev: evals.Eval) -> list[Row]:
        """The case's rows (started ahead under ``key``, or now), the verdict's input. An eval whose recordings may
        be missing (`missing_recordings: skip`) has the samples of a never-recorded case skipped, not errored."""
        if not self.live:
            rows = runner.run_case(run, self.options)
        else:
            if run.judges:
                self.judged.add((run.eval_name, run.variant.name, run.case.id))
            rows = self.batches.settled.pop(key) if key in self.batches.settled else self._job(key, run).rows(self.tick)
            if self.journal is not None and run.judges:
                for row in rows:
                    self.journal.append(row)
            self.tick()
        errored = any(r.outcome == Outcome.ERRORED for r in rows)
        skippable = errored and ev.missing_recordings == "skip" and self.options.replay  # then: never recorded?
        if skippable and not runner.cassette_for(run, self.options).is_file():
            rows = [dataclasses.replace(row, outcome=Outcome.SKIPPED) for row in rows]
        return rows

    def ended(self, rows: Sequence[Row], item: Item, samples: int, seconds: float, eval_path: str) -> None:
        """An item's rows as its report carried them (pytest-xdist's controller gets its workers' this way)."""
        self.rows.extend(rows)
        self.planned[item] = samples
        self.durations[(item[0], item[2], item[1])] = seconds
        self.eval_paths[item[0]] = eval_path

    def tick(self) -> None:
        if self.progress is not None:
            self.progress.tick()

    def kept(self, run: evals.CaseRun) -> Mapping[int, Row]:
        return self.options.done.get((run.eval_name, run.variant.name, run.case.id), {})

    def local_url(self) -> str:
        """A running local server: the one given, one already on the default port, or one we start."""
        with self._lock:
            if self._local is None:
                wanted = self.settings.local_url or evals.DEFAULT_LOCAL_URL
                self._local = self._stack.enter_context(local.ensure_running(wanted))
            return self._local

    def _cassette_saved(self, path: Path) -> None:
        if self.journal is not None:
            self.journal.saved(path)

    def _sample_ended(self, row: Row) -> None:
        if self.progress is not None:
            self.progress.sample(row)
        if self.journal is not None and row.item not in self.judged:
            self.journal.append(row)

    # -- the end -----------------------------------------------------------------------------------------------------

    def finish(self, interrupted: bool, shard: tuple[int, int] | None) -> Finished:
        """Stop sending; check results == planned, aggregate once, write the reports, mark the run's folder."""
        self.pool.stop()  # -x, Ctrl-C: nothing more is sent
        rows = journal.rows(self.run_dir) if self.run_dir is not None else self.rows
        done = Finished(rows, run_dir=self.run_dir)
        if not rows:  # no eval ran (e.g. collection stopped): a live run's folder says so, not to be resumed
            if self.run_dir is not None and self.live:  # stopped while its batches ran: to be resumed
                waiting = interrupted and batch_log.waiting(self.run_dir)
                journal.finish(self.run_dir, "interrupted" if waiting else "empty")
            return done
        try:
            loaded = {
                name: self.collected.get(name)
                or evals.load(Path(path), self.settings.root, profile=self.settings.profile)
                for name, path in self.eval_paths.items()
            }
            loaded |= self._evals_of(rows, loaded)
        except PromptVCRError as exc:  # an eval file changed while the session ran
            done.problem = str(exc)
            return done
        done.problem = self._accounting(rows, interrupted, done.notes)
        done.summaries = report.summarize(rows, loaded)
        self.run_dir = done.run_dir = self.run_dir or report.new_run_dir(self.settings.reports_dir)
        mode = "replay only" if not self.live else f"record mode {self.options.record_mode}"
        mode += ", through the Batch API" if self.batches.replay is not None else ""
        partial = " Partial: the run was stopped before every sample ran." if interrupted else ""
        report.write(self.run_dir, rows, done.summaries, report.run_note(rows, mode) + partial, loaded, self.durations)
        paths = self.eval_paths | {n: str(e.path) for n, e in loaded.items()}
        status = "interrupted" if interrupted else "complete"  # what `promptvcr merge` checks: a split's parts, done
        journal.finish(self.run_dir, status, evals=paths, shard=list(shard) if shard else None)
        if shard:  # a shard's gates see part of the rows: `promptvcr merge` decides
            done.notes.append("promptvcr: a shard: its gates are not final; `promptvcr merge` the shards' reports")
        return done

    def _evals_of(self, rows: list[Row], loaded: dict[str, evals.Eval]) -> dict[str, evals.Eval]:
        """Evals with rows but no finished item in this session (a resumed run's, a stopped item's)."""
        state = journal.read_state(self.run_dir) if self.run_dir is not None else {}
        paths = state.get("evals") or {}
        missing = {r.eval for r in rows} - loaded.keys()
        found = [name for name in missing if name in paths]
        return {
            name: evals.load(Path(paths[name]), self.settings.root, profile=self.settings.profile) for name in found
        }

    def _accounting(self, rows: list[Row], interrupted: bool, notes: list[str]) -> str | None:
        """Results == planned: every sample of every item that ran has one row, with an outcome (and an error class
        when it errored). Interrupted, it says how far the run got instead."""
        if interrupted:
            how = ": continue with `promptvcr run --resume`" if self.live else ""
            notes.append(f"promptvcr: interrupted with {len(rows)} sample(s) done{how}")
            return None
        samples: dict[Item, set[int]] = {}
        for row in rows:
            samples.setdefault(row.item, set()).add(row.sample)
        lost = sum(len(set(range(n)) - samples.get(item, set())) for item, n in self.planned.items())
        bad = [r for r in rows if r.outcome == Outcome.ERRORED and r.error is None]
        if lost or bad:
            return (
                f"promptvcr: {sum(self.planned.values())} samples planned; {lost} without a result, {len(bad)} without"
                " an outcome or error class — a bug in promptvcr: please report it with reports/latest/results.csv"
            )
        return None

    def close(self) -> None:
        self.pool.stop()
        if self.journal is not None:
            self.journal.close()
        self.connections.close()
        self.batches.close()
        self._stack.close()


def evaluate(
    paths: Sequence[Path | str],
    *,
    root: Path | None = None,
    record_mode: str = "none",
    cassettes_dir: str = "cassettes",
    reports_dir: str = "reports",
    samples: int | None = None,
    profile: str | None = None,
    local_url: str | None = None,
    say: Callable[[str], None] | None = None,
    batch: bool = False,
) -> Finished:
    """Run these eval files as `promptvcr run` does — every case × variant, replayed or recorded per
    ``record_mode`` (``batch``: recorded through the Batch API, as `--batch`), checked, gated, reported into
    ``reports_dir`` — without pytest, for scripts.

    Raises PromptVCRError (an InputError with every problem) for invalid files; nothing is sent then."""
    root = Path.cwd() if root is None else root
    mode = batch_phase.record_mode(RecordMode(record_mode), batch)
    settings = Settings(root, mode, root / cassettes_dir, root / reports_dir, profile, local_url, say, batch=batch)
    session = Session(settings)
    try:
        loaded = [evals.load(Path(p), root, samples, profile) for p in paths]
        runs: list[tuple[evals.Eval, evals.CaseRun]] = []
        for ev in loaded:
            session.add_eval(ev)
            planned = session.planned_runs(ev, ev.runs)
            for warning in session.preflight(ev, planned):
                if say is not None:
                    say(f"promptvcr: warning: {warning}")
            runs += [(ev, run) for run in planned]
        selection = journal.Selection(tuple(str(Path(p).resolve()) for p in paths), samples=samples)
        session.start_journal([str(p) for p in paths], selection)
        session.write_plan([run for _, run in runs])
        keyed = [(f"{run.eval_name}::{run.case.id}[{run.variant.name}]", ev, run) for ev, run in runs]
        if session.live:
            session.start_ahead([(key, run) for key, _, run in keyed])
        for key, ev, run in keyed:
            start = time.perf_counter()
            rows = session.rows_of(key, run, ev)
            item = (run.eval_name, run.variant.name, run.case.id)
            session.ended(rows, item, run.samples, time.perf_counter() - start, str(ev.path))
        return session.finish(interrupted=False, shard=None)
    finally:
        session.close()
