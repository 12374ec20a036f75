"""The one training loop, shared by every task.

    for each epoch:
        for each batch (from the saved position when resuming):
            objective.training_step(model, batch, trainer)
                loss = ...                       # the task's formula
                trainer.optimize("main", loss)   # (loss / window).backward(); at the end of an
                                                 # accumulation window: clip, step, zero_grad, schedule
        validate every N epochs (or steps); keep the best weights by the monitored metric
    test with the best weights

A GAN's objective calls ``optimize`` twice per batch ("discriminator", then
"generator"): two players, one loop.

Metrics stay on the device between logging points: ``.item()`` is called every
``log_every_n_steps`` steps and at epoch end, never per step. Signals only set
a flag (ptlab.engine.signals); the loop checks it at the next step boundary and
before the final validation, test pass and metrics, checkpoints and stops.
Every schedule advances once per trainer step, however often its optimizer
stepped in it (a GAN's discriminator with ``d_steps``).

A run that ended — by its budget or by early stopping, whose reason is part of
the saved loop state — is finished: resuming it trains no further unless
``trainer.max_epochs``/``max_steps`` was raised.

A NaN or infinite loss is found at the next logging point (or before any
checkpoint is written, whichever comes first) and stops the run with the exact
step and its loss terms; no checkpoint with non-finite weights is ever saved.
``trainer.skip_nonfinite=true`` instead checks every step (one host sync per
step) and skips, and counts, steps whose loss or gradient is not finite.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager

import torch

from ptlab.config import checkpoint_settings, trainer_settings
from ptlab.engine import nonfinite
from ptlab.engine.anomaly import nan_detection
from ptlab.engine.callbacks import Callback
from ptlab.engine.checkpoint import clean_state_dict
from ptlab.engine.distributed import all_sum, any_rank, average_gradients, broadcast_tensors, for_training
from ptlab.engine.evaluation import evaluate
from ptlab.engine.loop_state import BestMetric, LoopState
from ptlab.engine.nonfinite import NonFiniteLoss
from ptlab.engine.precision import Precision
from ptlab.engine.signals import StopSignals
from ptlab.engine.step_logs import StepLogs
from ptlab.engine.throughput import Throughput, count_flops, peak_flops
from ptlab.engine.trainer_state import TrainerState, callback_states
from ptlab.engine.weight_average import WeightAverage

if TYPE_CHECKING:
    from ptlab.api import Run

log = logging.getLogger("ptlab")


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint was written. ``exit_code`` is 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


class Trainer(TrainerState):
    """Trains ``run.model`` on ``run.data`` with ``run.objective``; callbacks do the optional parts.

    Checkpoints (``checkpoint()``, ``restore()``): ptlab.engine.trainer_state.
    """

    def __init__(self, run: Run, callbacks: list[Callback], signals: StopSignals | None = None) -> None:
        """``signals``: the run's stop signals when the caller catches them for longer than :meth:`fit`."""
        self.run, self.cfg = run, run.cfg
        self.settings, self.checkpointing = trainer_settings(run.cfg), checkpoint_settings(run.cfg)
        self.callbacks = callbacks
        self.model = run.model
        self.world = run.world
        compiled = torch.compile(run.model) if self.settings.compile else run.model
        self.train_model, self._average_gradients = for_training(compiled, len(run.optimizers), run.device, self.world)
        self.precision = Precision(self.settings.precision, run.device)
        self.state = LoopState(world_size=self.world.size)
        self.best = BestMetric(self.checkpointing.monitor, self.checkpointing.mode,
                               self.settings.early_stopping.min_delta)
        self.best_weights: dict[str, torch.Tensor] | None = None  # with trainer.ema.decay: the average's
        self.best_without_ema: dict[str, torch.Tensor] | None = None  # the raw weights of the best step
        decay = self.settings.ema.decay
        self.ema = WeightAverage(self.model, decay) if decay is not None else None
        self.signals = signals or StopSignals()
        self._own_signals = signals is None
        self._logs = StepLogs(self.settings.skip_nonfinite)  # what each batch logged since the last logging point
        peak = peak_flops(run.device, self.settings.precision, self.settings.peak_flops)
        self._throughput = Throughput(run.device, peak if len(run.optimizers) == 1 else None,
                                      count_tokens="vocab_size" in run.data.info)
        self._epoch_started: float | None = None  # perf_counter() when the running epoch loop began
        self._window, self._window_ends = 1, True
        self._share = 1.0  # this rank's batch's weight in the global batch (ptlab.data.loaders.batch_share)
        self._skipped: set[str] = set()  # optimizers whose update this step skips (trainer.skip_nonfinite)
        self._stepped = False  # an optimizer took this step (the GradScaler updates only then)
        self.last_checkpoint: tuple[Path, int] | None = None  # (last.pt, its step), set by the Checkpointer
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        several = len(run.optimizers) > 1
        self._inputs = {
            name: [p for group in optimizer.param_groups for p in group["params"]] if several else None
            for name, optimizer in run.optimizers.items()
        }

    # --- the loop ------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train until max_epochs/max_steps or an early stop, then test with the best weights."""
        with self.signals.caught() if self._own_signals else contextlib.nullcontext():
            try:
                return self._fit()
            except TrainingInterrupted:
                raise
            except BaseException as error:  # e.g. a non-finite loss: the console stops its bar before the message
                self._emit("on_exception", error)
                raise

    def _fit(self) -> dict[str, Any]:
        s, t = self.state, self.settings
        train = self.run.data.train
        self._emit("on_fit_start")
        callback_states(self.callbacks)  # a callback whose state a checkpoint cannot hold fails now, not later
        self._stop_if_signalled()
        self._throughput.begin(s.samples, s.step, s.train_seconds)
        with nan_detection(self.settings.detect_anomaly, self._anomaly_error):
            while s.stop_reason is None and not self._budget_spent():
                self.train_model.train()
                for module in self.run.frozen_modules:
                    module.eval()
                self._epoch_started = time.perf_counter()
                batches_per_epoch = len(train)
                for batch in train.batches(s.epoch, start=s.batch_in_epoch):
                    self._train_on(batch, batches_per_epoch)
                    if self._window_ends:
                        self._end_step()
                        if self._interrupted(at_step=True) or s.stop_reason or (t.max_steps is not None
                                                                                and s.step >= t.max_steps):
                            break
                s.train_seconds, self._epoch_started = self._training_seconds(), None
                self._stop_if_signalled()
                if s.batch_in_epoch == batches_per_epoch:
                    s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                    by_epochs = t.val_every_n_steps is None and s.epoch % t.val_every_n_epochs == 0
                    if (by_epochs or self._budget_spent()) and s.validated_at_step != s.step:
                        self.validate()
                    self._emit("on_epoch_end")
        if s.validated_at_step != s.step:
            self.validate()  # the run ended between validations: judge its final weights too
        self._stop_if_signalled()
        if s.stop_reason:
            log.info(s.stop_reason)
        if s.skipped_steps:
            log.warning("%d of %d steps were skipped for a non-finite loss or gradient", s.skipped_steps, s.step)
        return self._finish()

    def _train_on(self, batch, batches_per_epoch: int) -> None:
        """One batch: the objective computes its losses and hands each to :meth:`optimize`."""
        s, accum = self.state, self.settings.grad_accum
        if accum > 1:
            window_start = s.batch_in_epoch - s.batch_in_epoch % accum
            self._window = min(accum, batches_per_epoch - window_start)
            self._window_ends = s.batch_in_epoch + 1 == window_start + self._window
        share = getattr(self.run.data.train, "share", None)
        self._share = share(s.batch_in_epoch) if share is not None and self.world.distributed else 1.0
        if self._throughput.wants_flops():
            flops = count_flops(self.model, self.run.objective, batch, self.precision.autocast())
            self._throughput.set_flops(flops, len(batch[0]))
        with self.precision.autocast(), self._gradient_sync():
            logs = self.run.objective.training_step(self.train_model, batch, self)
        self._throughput.add(batch)
        self._logs.add(s.step + 1, logs)
        s.batch_in_epoch += 1
        s.samples += len(batch[0])
        self._emit("on_train_batch_end", batch, logs)

    def _gradient_sync(self) -> ContextManager:
        """Under DDP, only the last batch of an accumulation window all-reduces the gradients."""
        if self._window_ends or not self.world.distributed or self._average_gradients:
            return contextlib.nullcontext()
        return self.train_model.no_sync()

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` into optimizer ``name``'s parameters; step it when the window ends.

        The loss is averaged over the batches of the accumulation window. With several optimizers (a GAN),
        gradients flow only into the named optimizer's parameters: the generator's loss leaves none in the
        discriminator.
        """
        if self._window > 1:
            loss = loss / self._window
        if self._share != 1.0:  # under torchrun, a last batch that does not split evenly: weigh it as one process
            loss = loss * self._share
        if self.settings.skip_nonfinite and not self._finite(loss):
            self._skipped.add(name)  # no backward: the bad loss leaves no gradient behind
        else:
            self.precision.backward(loss, self._inputs[name])
        if self._window_ends:
            self._update(name)

    def _update(self, name: str) -> None:
        """The end of an accumulation window: clip, step (unless skipped), zero the gradients, schedule."""
        optimizer, t = self.run.optimizers[name], self.settings
        if name not in self._skipped:
            if self._average_gradients:
                average_gradients(self._inputs[name])
            norm = None
            if t.grad_clip:
                self.precision.unscale(optimizer)
                norm = torch.nn.utils.clip_grad_norm_(self._inputs[name] or self._params, t.grad_clip)
            if t.skip_nonfinite and not self.precision.scaler:  # a GradScaler skips overflowing gradients itself
                if norm is None:
                    norm = torch.nn.utils.get_total_norm([p.grad for p in self._inputs[name] or self._params
                                                          if p.grad is not None])
                if not self._finite(norm):
                    self._skipped.add(name)
        if name in self._skipped:
            optimizer.zero_grad(set_to_none=True)
            return
        self._emit("on_before_optimizer_step", name, optimizer)
        self.precision.step(optimizer)
        self._stepped = True
        optimizer.zero_grad(set_to_none=True)

    def _advance_schedules(self) -> None:
        """Every schedule moves one trainer step, skipped steps included, whatever its optimizer did in it."""
        if self.state.step == 0:  # torch warns when the first step of an optimizer was skipped (GradScaler, d_steps)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler.step\(\)` before")
                for scheduler in self.run.schedulers.values():
                    scheduler.step()
            return
        for scheduler in self.run.schedulers.values():
            scheduler.step()

    def _finite(self, value: torch.Tensor) -> bool:
        """Whether ``value`` is finite on every rank (a host sync: used only with trainer.skip_nonfinite)."""
        return not any_rank(not bool(torch.isfinite(value).all()), self.run.device)

    def _end_step(self) -> None:
        s = self.state
        if self._stepped:
            self.precision.update()
            self._stepped = False
        self._advance_schedules()
        if self.ema is not None:
            self.ema.update(self.model)
        s.step += 1
        if self._skipped:
            s.skipped_steps += 1
            nonfinite.warn_skipped(s.step, s.skipped_steps, self._skipped)
            self._skipped.clear()
        if s.step % self.settings.log_every_n_steps == 0:
            self._log_training()
        if self.settings.val_every_n_steps and s.step % self.settings.val_every_n_steps == 0:
            self.validate()  # before on_step_end: a step checkpoint then holds this validation, never repeated
        self._emit("on_step_end")

    def _log_training(self) -> None:
        sums = self._logs.sums()
        if not sums:
            return
        means = torch.stack([total / count for total, count in sums.values()])
        if self.world.distributed:
            means = all_sum(means) / self.world.size  # the mean over ranks: every rank logs and judges the same numbers
        values = means.tolist()
        if not self.settings.skip_nonfinite and not all(map(math.isfinite, values)):
            raise self._nonfinite_error()
        self._logs.clear()
        metrics = {f"train/{key}": value for key, value in zip(sums, values)}
        if self.settings.skip_nonfinite:
            metrics["train/skipped_steps"] = self.state.skipped_steps
        for name, optimizer in self.run.optimizers.items():
            key = "train/lr" if len(self.run.optimizers) == 1 else f"train/lr_{name}"
            metrics[key] = optimizer.param_groups[0]["lr"]
        metrics.update(self._throughput.interval(self.state.samples, self.state.step, self._training_seconds()))
        self._emit("on_log", metrics)

    def ensure_finite(self) -> None:
        """Raise NonFiniteLoss instead of letting a checkpoint keep weights that a non-finite step produced."""
        if any_rank(self._logs.first_nonfinite() is not None, self.run.device):
            raise self._nonfinite_error()
        if not bool(torch.stack([p.isfinite().all() for p in self.model.parameters()]).all()):  # one host sync
            raise nonfinite.weights_error(self.state.step, self._advice())

    def _nonfinite_error(self) -> NonFiniteLoss:
        return nonfinite.loss_error(self._logs.first_nonfinite(), self.state.step, self._advice())

    def _anomaly_error(self, found: str) -> NonFiniteLoss:
        return NonFiniteLoss(f"anomaly detection at step {self.state.step + 1}: {found}; {self._advice()}")

    def _advice(self) -> str:
        return nonfinite.advice(self.last_checkpoint, self.checkpointing.save, self.settings.detect_anomaly)

    # --- evaluation ----------------------------------------------------------------------------

    def evaluate(self, split: str) -> dict[str, float]:
        """Mean loss and every metric of the objective on ``split`` ("val" or "test")."""
        return evaluate(self.run, self.model, self.precision, split)

    def validate(self) -> dict[str, float]:
        self._log_training()
        self.ensure_finite()
        if self.ema is not None and self.world.distributed:  # rank 0's BatchNorm statistics, as evaluate takes
            broadcast_tensors([*self.model.buffers(), *self.ema.buffers()])
        with self.averaged_weights():
            metrics = self.evaluate("val")
            improved = self.best.update(metrics, self.state.epoch, self.state.step)
            if improved:
                self.best_weights = clean_state_dict(self.model)
        if improved and self.ema is not None:
            self.best_without_ema = clean_state_dict(self.model)
        self.state.validated_at_step = self.state.step
        self._emit("on_validation_end", metrics, improved)
        return metrics

    def _finish(self) -> dict[str, Any]:
        last_weights = clean_state_dict(self.model)
        results, without_ema = dict(self.best.metrics), {}
        if self.ema is not None:  # the raw weights of the best step, reported beside the average's
            self.model.load_state_dict(self.best_without_ema if self.best_without_ema is not None else last_weights)
            without_ema = {f"{key}_without_ema": value for key, value in self.evaluate("test").items()}
        tested = self.best_weights if self.best_weights is not None else self.ema and self.ema.weights
        if tested is not None:
            self.model.load_state_dict(tested)
        results.update(self.evaluate("test"))
        results.update(self.run.objective.baselines(self.run.data, results))
        results.update(without_ema)
        results.update(self._throughput.overall(self.state.samples, self.state.step, self.state.train_seconds))
        results.update(epoch=self.state.epoch, step=self.state.step, train_seconds=round(self.state.train_seconds, 3))
        if self.settings.skip_nonfinite:
            results["skipped_steps"] = self.state.skipped_steps
        self.model.load_state_dict(last_weights)
        self._stop_if_signalled()  # before anything final is written: the relaunch repeats the test pass
        self._emit("on_fit_end", results)
        self._stop_if_signalled()  # the run is complete; its relaunch prints these metrics
        return results

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """The run has ended: its budget is spent or it stopped early (training it further does nothing)."""
        return self.state.stop_reason is not None or self._budget_spent()

    @property
    def total_steps(self) -> int:
        """Optimizer steps the run will take if nothing stops it early."""
        return self.settings.total_steps(len(self.run.data.train))

    @property
    def step(self) -> int:
        """Optimizer steps taken so far (during a training step: the steps before it)."""
        return self.state.step

    def averaged_weights(self) -> ContextManager[torch.nn.Module]:
        """The model as validation judges it: with trainer.ema.decay, the average's weights loaded for the block."""
        return self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext(self.model)

    def checkpoint_saved(self, path: Path) -> None:
        """Tell every callback that ``path`` was written (the Checkpointer calls it where it writes)."""
        self._emit("on_checkpoint_saved", path)

    def log_image(self, tag: str, image: torch.Tensor) -> None:
        """Hand an image (C×H×W in [0, 1]) to every logger that keeps images, at the current step."""
        self._emit("on_image", tag, image)

    def log_text(self, tag: str, text: str) -> None:
        """Hand a Markdown text to every logger that keeps text (TensorBoard), at the current step."""
        self._emit("on_text", tag, text)

    def _training_seconds(self) -> float:
        """Seconds spent training so far (validation excluded), the running epoch included."""
        running = 0.0 if self._epoch_started is None else time.perf_counter() - self._epoch_started
        return self.state.train_seconds + running

    def request_stop(self, reason: str) -> None:
        """End the run after this validation or step (saved with the run: a relaunch does not train on)."""
        self.state.stop_reason = reason

    def _interrupted(self, at_step: bool = False) -> bool:
        """A signal arrived here, or on any rank of a torchrun job (all ranks stop at the same step).

        Asking the other ranks is a collective and a host sync, so after a training
        step (``at_step``) a torchrun job asks only at logging points.
        """
        received = self.signals.received is not None
        if not self.world.distributed:
            return received
        if at_step and self.state.step % self.settings.log_every_n_steps:
            return False
        return any_rank(received, self.run.device)

    def _stop_if_signalled(self) -> None:
        """At a safe point: after a SIGTERM/SIGINT, save the state and stop (TrainingInterrupted)."""
        if self._interrupted():
            self._emit("on_interrupt")
            raise TrainingInterrupted(self.signals.received or signal.SIGTERM)

    def _budget_spent(self) -> bool:
        t, s = self.settings, self.state
        return s.epoch >= t.max_epochs or (t.max_steps is not None and s.step >= t.max_steps)

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)
