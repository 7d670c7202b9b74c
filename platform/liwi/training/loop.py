"""The one budgeted training loop of the single-process trainers (``train-local``, ``finetune``).

It runs until ``steps`` or ``max_minutes``, whichever comes first, with a cosine learning
rate that follows whichever budget is closer to done; it draws batches in a fresh random
order every epoch, validates every ``val_every`` steps, and writes every record to a JSONL
history as it goes. What differs between trainers (how a batch is made, how validation
runs) comes in as callables. Ctrl-C or SIGTERM ends it after the step in progress; the
trainer saves what was trained and then raises :class:`TrainingStopped`.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]


@dataclass
class Budget:
    """How long to train and how often to validate."""

    steps: int  # optimisation steps (upper bound)
    max_minutes: float  # wall-clock budget (upper bound)
    lr: float  # peak learning rate of the cosine schedule
    batch_size: int  # samples per step
    grad_clip: float  # max global gradient norm
    val_every: int  # steps between validations

    @classmethod
    def of(cls, cfg: Any) -> Budget:
        """The budget fields of a trainer's config (same names on every trainer)."""
        return cls(cfg.steps, cfg.max_minutes, cfg.lr, cfg.batch_size, cfg.grad_clip, cfg.val_every)


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training early; ``checkpoint`` holds what was trained."""

    def __init__(self, checkpoint: Path, steps: int, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} after {steps} steps")
        self.checkpoint = checkpoint
        self.steps = steps
        self.signum = signum  # the CLI exits 128 + signum (130 SIGINT, 143 SIGTERM)


@dataclass
class LoopResult:
    """What the loop did: steps run, minutes spent, every history record, and the signal
    that stopped it early (``None`` when a budget ended it)."""

    steps: int
    minutes: float
    history: list[Record] = field(default_factory=list)
    stopped_by: str | None = None

    @property
    def final_val(self) -> Record:
        """The last validation's losses (``{}`` when stopped before any)."""
        last = next((h for h in reversed(self.history) if h["kind"] == "val"), {})
        return {k: v for k, v in last.items() if k not in ("kind", "step")}

    def raise_if_stopped(self, checkpoint: Path) -> None:
        """After the trainer saved ``checkpoint``: :class:`TrainingStopped` if a signal
        ended the loop."""
        if self.stopped_by is not None:
            raise TrainingStopped(checkpoint, self.steps, int(signal.Signals[self.stopped_by]))


BAR_FORMAT = "{desc}: {percentage:3.0f}% of budget |{bar}| [{elapsed}<{remaining}{postfix}]"


def budget_done(step: int, seconds: float, budget: Budget) -> float:
    """Per cent of the budget spent after ``step`` steps and ``seconds``: the larger share."""
    return 100.0 * min(1.0, max(step / budget.steps, seconds / 60.0 / budget.max_minutes))


def run_budgeted(
    model: Any,
    opt: Any,
    loss_config: Any,
    budget: Budget,
    n_items: int,
    make_batch: Callable[[list[int]], Any],
    validate: Callable[[], Record],
    history_path: Path,
    rng: Any,
    *,
    on_epoch: Callable[[int], None] | None = None,
    validate_first: bool = False,
    step_fn: Callable[..., Record] | None = None,
    desc: str = "train",
    progress: bool = True,
) -> LoopResult:
    """Train ``model`` on batches of item indices in ``range(n_items)``; validate at the end.

    ``make_batch(indices)`` gives one collated batch; ``on_epoch(epoch)`` runs before each
    epoch's order is drawn (a dataset re-seeding its augmentations); ``validate_first`` also
    validates at step 0 (a warm start's starting point); ``step_fn(model, opt, batch,
    loss_config, grad_clip=…)`` replaces :func:`~liwi.training.step.train_step` (a trainer
    with its own loss) and returns its logs, ``total`` among them.
    """
    from tqdm import tqdm

    from liwi.stop_signals import StopRequest
    from liwi.training.step import lr_factor, set_lr, train_step

    update = step_fn or train_step
    history: list[Record] = []
    order: list[int] = []
    epoch = 0
    step = 0
    t0 = time.monotonic()
    # the bar counts the budget in per cent, whichever of steps and minutes is closer to done
    # (the lr schedule's clock): a bar over 100,000 steps that minutes end read "150 hours"
    bar = tqdm(total=100, disable=not progress, desc=desc, bar_format=BAR_FORMAT)
    with StopRequest() as stop, history_path.open("w") as hist:

        def record(rec: Record, flush: bool = False) -> None:
            history.append(rec)
            hist.write(json.dumps(rec) + "\n")
            if flush:
                hist.flush()

        if validate_first:
            record({"kind": "val", "step": 0, **validate()}, flush=True)
        while step < budget.steps and stop.signal is None:
            elapsed = (time.monotonic() - t0) / 60.0
            if elapsed >= budget.max_minutes:
                break
            frac = budget_done(step, elapsed * 60.0, budget) / 100.0
            set_lr(opt, budget.lr * lr_factor(frac))
            if len(order) < budget.batch_size:
                if on_epoch is not None:
                    on_epoch(epoch)
                epoch += 1
                order += [int(i) for i in rng.permutation(n_items)]
            idx, order = order[: budget.batch_size], order[budget.batch_size :]
            logs = update(model, opt, make_batch(idx), loss_config, grad_clip=budget.grad_clip)
            step += 1
            done = budget_done(step, time.monotonic() - t0, budget)
            bar.update(max(0.0, done - bar.n))
            bar.set_postfix(step=step, loss=f"{logs['total']:.4f}")
            record({"kind": "train", "step": step, "minutes": round(elapsed, 3), **logs})
            if step % budget.val_every == 0:
                record({"kind": "val", "step": step, **validate()}, flush=True)
        bar.close()
        if stop.signal is None:  # asked to stop: no final validation, the checkpoint next
            record({"kind": "val", "step": step, **validate()}, flush=True)
        stopped_by = stop.signal.name if stop.signal is not None else None  # also during it
        if stopped_by is not None:
            record({"kind": "stopped", "step": step, "signal": stopped_by}, flush=True)
    return LoopResult(step, round((time.monotonic() - t0) / 60.0, 2), history, stopped_by)


def checkpoint_exit_code(train: Callable[[], Path]) -> int:
    """Run a trainer for the CLI and print its checkpoint; exit 0, or 128 + the signal that
    stopped it early (what it had trained is saved all the same)."""
    try:
        path = train()
    except TrainingStopped as stopped:
        print(f"{stopped}; checkpoint: {stopped.checkpoint}")
        return 128 + stopped.signum
    print(f"checkpoint: {path}")
    return 0
