"""The trainer: `python -m amc_tui.train --run-dir DIR [--resume]` (owner.py) runs Trainer.

Reads DIR/config.toml, trains the dual-head model and talks to the rest of amc-tui only
through the run directory (DESIGN sections 3-5): status.json (atomic, heartbeat every 5 s from
a thread, also inside long epochs), events.jsonl (start, step, epoch, gpu, checkpoint, export,
end), checkpoints/last.pt and best.pt, export/epoch_NNN and export/final, and its own
RUNLOG.md entry after each epoch and at the end (a failure to write it is `runlog_error` in
status.json, never a failed run). It holds the run's lock (runlock.py) for its whole life.
last.pt is written at epoch ends and every `run.checkpoint_minutes` inside an epoch (with the
position in the epoch), so a kill -9 loses at most that much training.

Exit: completed -> 0; SIGTERM/SIGINT -> finish the step, write last.pt, stopped, 0; a user
error (bad arch, data file, checkpoint) -> failed with one line, 2; another trainer owns the
run -> one line on stderr, nothing written, 2; a full disk -> failed with one line naming the
file, 1; anything else or a non-finite loss -> failed with the traceback tail / task and
step, 1.

No host sync per training step on CUDA: losses and metrics accumulate on the device and are
read at log points (every `step_log_every` steps) and at the end of the epoch.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc_tui import contract
from amc_tui.config import Config, load_config, resolve_arch, with_data_path
from amc_tui.data.source import load_dataset
from amc_tui.errors import UserError
from amc_tui.fsutil import read_json
from amc_tui.gpu import GpuSampler
from amc_tui.mirror.sink import MirrorSink, open_sink
from amc_tui.notify.observe import after_trainer_event
from amc_tui.run import health, runlock
from amc_tui.run.events import read_events
from amc_tui.run.rundir import (
    RunDir,
    append_event,
    attempt_started,
    read_meta,
    read_status,
    remove_stale_temp_files,
    run_workspace,
    write_status,
)
from amc_tui.train import checkpoint as ckpt
from amc_tui.train import preflight, report, threads, trainstate
from amc_tui.train.build import Built, build, pick_device, visible_gpus
from amc_tui.train.dist import Dist
from amc_tui.train.evaluate import evaluate
from amc_tui.train.export import plain, write_export
from amc_tui.train.feed import Feed
from amc_tui.train.metrics import Accumulator, Summary
from amc_tui.train.model import count_params
from amc_tui.train.schedule import Schedule

log = logging.getLogger("amc_tui.train")
GPU_EVENT_EVERY_S = 10.0
ERROR_TAIL_CHARS = 2000


class Stopped(Exception):
    """SIGTERM/SIGINT was received; the state has been checkpointed."""


class NonFinite(Exception):
    """A loss became NaN or inf."""


# --------------------------------------------------------------------------- helpers

PAUSE_FILE = "pause-at-step"
RELEASE_FILE = "pause-release"  # its presence ends a pause (removed when seen)


def take_pause_step(run: RunDir) -> int | None:
    """A hook for tests and fault drills: a file `pause-at-step` in the run directory holding
    a step number N. The trainer that starts training reads it and removes it (it applies to
    this trainer only, not to a later resume or restart); right after optimizer step N, its
    step event written and before its checkpoint check, it prints "paused at step N" and
    waits for SIGTERM/SIGINT (then it saves and stops as usual), heartbeat still beating, or
    for a file `pause-release` (then it trains on, pausing again at the step a new
    `pause-at-step` names). A test thus acts on, or looks at, a trainer at a known point
    (kill -9, stop, a RUNLOG entry between epochs) instead of racing its pace.
    No file (always, outside tests): None, and a step costs one integer comparison."""
    path = run.path / PAUSE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    path.unlink()
    return int(text)


# --------------------------------------------------------------------------- trainer


class Trainer:
    built: Built  # model, optimizer and step, made by setup()

    def __init__(
        self, run_dir: Path, resume: bool = False, lock: runlock.RunLock | None = None
    ) -> None:
        self.run = RunDir(Path(run_dir).resolve())
        self.resume = resume
        self.lock = lock  # taken by main() when the caller did not take it
        self.stop_requested = False
        self.started: dict[str, float] = {}  # this attempt's started_at (status.json's clock)
        self._load_tenth = 0
        self.epoch = 0  # completed epochs
        self.step = 0  # optimizer steps taken
        self.batch_in_epoch = 0  # batches done in the epoch in progress
        self.epoch_samples = 0  # samples and training seconds of the epoch in progress
        self.epoch_train_s = 0.0
        self.best: dict[str, Any] | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.final_done = False
        self.last_epoch_event: dict[str, Any] | None = None
        # the epoch's mean losses between best.pt and the weighting's end_epoch (resume
        # from best.pt applies them)
        self.weighting_pending: dict[str, float] | None = None
        self.runlog_error: str | None = None
        self.health: health.Monitor | None = None  # the health rules (None: [health] off)
        self.stop_reason: str | None = None  # a health rule in run.stop_on fired
        self._gpu_util: collections.deque[tuple[float, float]] = collections.deque(maxlen=2048)
        self._last_save = time.monotonic()  # of last.pt, for run.checkpoint_minutes
        self._threads_at = 0.0  # when the CPU thread share was last decided
        self._status_lock = threading.Lock()
        self._hb_stop = threading.Event()
        self._signalled = threading.Event()  # SIGTERM/SIGINT: ends a test pause (PAUSE_FILE)
        self._hb_thread: threading.Thread | None = None
        self.device = torch.device("cpu")
        self.cfg: Config | None = None
        self.meta: dict[str, Any] = {}
        self.dist = Dist()  # several processes: rank 0 alone writes the run's files
        self.mirror: MirrorSink | None = None  # [mirror]: events to TensorBoard / W&B

    # ----------------------------------------------------------------- status & events

    def status(self, **updates: Any) -> None:
        if not self.dist.is_main:  # rank 0 alone writes status.json
            return
        with self._status_lock, ckpt.disk_full_as_error(self.run.status):
            write_status(self.run, **updates)

    def event(self, kind: str, **fields: Any) -> None:
        if not self.dist.is_main:  # rank 0 alone writes events.jsonl
            return
        with ckpt.disk_full_as_error(self.run.events):
            written = append_event(self.run, kind, **plain(fields))
        if self.mirror is not None:  # never blocks: a full queue drops the event
            self.mirror.put(written)
        after_trainer_event(self.run.path, kind)  # notifications (health, end): never blocking

    def _heartbeat(self) -> None:
        sampler = None
        last_gpu = 0.0
        if self.device.type == "cuda":
            with contextlib.suppress(Exception):
                sampler = GpuSampler()
        while not self._hb_stop.wait(contract.HEARTBEAT_S):
            with contextlib.suppress(Exception):
                self.status(heartbeat_at=time.time(), step=self.step, epoch=self.epoch)
            if sampler is not None and time.time() - last_gpu >= GPU_EVENT_EVERY_S:
                last_gpu = time.time()
                with contextlib.suppress(Exception):
                    self._gpu_event(sampler)

    def _gpu_event(self, sampler: Any) -> None:
        snap = sampler.sample()
        if not snap.ok:
            return
        gpus = visible_gpus()
        idx = self.device.index or 0
        phys = gpus[idx] if idx < len(gpus) else idx
        for g in snap.gpus:
            if g.index == phys and not g.lost and g.util is not None:
                self._gpu_util.append((time.time(), float(g.util)))  # the data-bound rule
            if (g.index == phys or self.dist.enabled and g.index in gpus) and not g.lost:
                self.event(
                    "gpu", index=g.index, util=g.util, mem_used_mb=g.mem_used_mb,
                    mem_total_mb=g.mem_total_mb, temp_c=g.temp_c, power_w=g.power_w,
                )  # fmt: skip

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.stop_requested:
            print(f"received {signal.Signals(signum).name}: stopping after this step", flush=True)
        self.stop_requested = True
        self._signalled.set()

    def _pause(self) -> int | None:
        """The test pause (take_pause_step): say so, then wait for SIGTERM/SIGINT, or for the
        run's RELEASE_FILE (training goes on, pausing again at the step a new PAUSE_FILE
        names). Returns that next step, or None."""
        print(f"paused at step {self.step} ({PAUSE_FILE}): waiting for SIGTERM", flush=True)
        release = self.run.path / RELEASE_FILE
        while not self._signalled.wait(0.05):
            if release.exists():
                release.unlink()
                return take_pause_step(self.run)
        return None

    def _load_progress(self, done: int, total: int) -> None:
        """Called between blocks while the selection loads into RAM (minutes for the real
        file): a stop asked for meanwhile ends the run now instead of after the load, and
        train.log shows how far it got every 10 %."""
        if self.stop_requested and not self.dist.enabled:  # several: the first agreed stop
            raise Stopped
        tenth = 10 * done // max(total, 1)
        if tenth > self._load_tenth:
            self._load_tenth = tenth
            print(f"loading frames into RAM: {done:,} / {total:,}", flush=True)

    def _runlog(self) -> None:
        """Update the run's RUNLOG.md entry; a failure never fails training, but it is said
        in train.log and kept as `runlog_error` in status.json (None once it works again)."""
        if not self.dist.is_main:  # rank 0 alone writes RUNLOG.md
            return
        error = preflight.sync_runlog(self.run)
        if error != self.runlog_error:
            self.runlog_error = error
            with contextlib.suppress(Exception):
                self.status(runlog_error=error)

    # ----------------------------------------------------------------- main

    def main(self) -> int:
        self.dist.redirect_output(self.run.path)  # ranks > 0: train.rank<N>.log
        own_lock = self.lock is None and self.dist.is_main  # rank 0 alone owns the run
        if own_lock:  # in-process use; the process entry (owner.py) takes it before torch
            try:
                self.lock = runlock.acquire(self.run.path)
            except runlock.RunLocked as e:
                print(f"error: {e}", file=sys.stderr, flush=True)
                return e.exit_code
        try:
            return self._main()
        finally:
            if own_lock and self.lock is not None:
                self.lock.release()

    def _main(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for path in remove_stale_temp_files(self.run) if self.dist.is_main else []:
            print(f"removed a temp file left by a killed write: {path}", flush=True)
        self.meta = read_meta(self.run)
        # the attempt's clock: the launcher's stamp when it started us (elapsed never restarts)
        self.started = attempt_started(read_status(self.run), time.time())
        self.status(
            state="running", pid=self.dist.owner_pid(), pgid=os.getpgid(self.dist.owner_pid()),
            host=socket.gethostname(), **self.started,
            heartbeat_at=time.time(), ended_at=None, exit_code=None,
            error=None, runlog_error=None, stop_reason=None,
        )  # fmt: skip
        self._hb_thread = threading.Thread(
            target=self._heartbeat, name="amc-heartbeat", daemon=True
        )
        self._hb_thread.start()
        try:
            self.setup()
            self.train()
            self.final()
            return self.finish("completed", 0)
        except Stopped:
            return self.finish("stopped", 0)
        except UserError as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"error: {msg}", file=sys.stderr, flush=True)
            return self.finish("failed", 2, error=msg)
        except (NonFinite, ckpt.DiskFull) as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return self.finish("failed", 1, error=str(e))
        except BaseException as e:  # noqa: BLE001 - every failure must land in status.json
            if self.dist.peer_lost(e):  # another rank died: the launcher records `crashed`
                return self.dist.leave(e)
            tb = traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
            tail = tb[-ERROR_TAIL_CHARS:]
            if isinstance(e, KeyboardInterrupt | SystemExit):
                return self.finish("stopped", 0)
            return self.finish("failed", 1, error=tail)

    def finish(self, state: str, code: int, error: str | None = None) -> int:
        if self.mirror is not None:  # a bounded wait, heartbeat still beating
            with contextlib.suppress(Exception):
                self.mirror.close(state)
        self._hb_stop.set()
        if self._hb_thread is not None:
            self._hb_thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.status(
                state=state, exit_code=code, ended_at=time.time(), heartbeat_at=time.time(),
                error=error, epoch=self.epoch, step=self.step, best=self.best,
                stop_reason=self.stop_reason if state == "stopped" else None,
            )  # fmt: skip
        reason = {"reason": self.stop_reason} if state == "stopped" and self.stop_reason else {}
        with contextlib.suppress(Exception):
            self.event("end", state=state, exit_code=code, best=self.best, error=error, **reason)
        self._runlog()
        print(f"{state} (exit {code})", flush=True)
        self.dist.close()
        return code

    # ----------------------------------------------------------------- setup

    def setup(self) -> None:
        ws = run_workspace(self.run)
        cfg = with_data_path(load_config(self.run.config), ws)
        self.cfg = cfg
        self.mirror = open_sink(self.run, cfg, self.event) if self.dist.is_main else None
        t, run_cfg, m, im = cfg.train, cfg.run, cfg.model, cfg.image
        self.device = pick_device(run_cfg.device)
        if self.device.type == "cpu":
            threads.limit_interop()  # before any parallel work
        self.device = self.dist.setup(self.device)  # several processes: join, cuda:LOCAL_RANK
        torch.manual_seed(t.seed)
        np.random.seed(t.seed % 2**32)

        random.seed(t.seed)
        self.dist.seed(t.seed)  # other ranks: their own dropout masks
        fresh = {} if self.resume else {"epoch": 0, "step": 0, "best": None}
        self.status(
            device=str(self.device), gpus=visible_gpus() if self.device.type == "cuda" else [],
            epochs=t.epochs, **fresh,
        )  # fmt: skip
        print(f"amc-tui trainer: run {self.run.path.name}, device {self.device}", flush=True)
        # before the data load (minutes): a missing file fails at once (the process entry
        # checked these before importing torch; in-process use gets the same errors here)
        seed_from = preflight.seed_files(cfg, ws, self.resume)

        t0 = time.time()
        try:
            self.ds = load_dataset(
                cfg.data, progress=self._load_progress, ram_budget=self.dist.ram_budget()
            )
        except UserError as e:  # a problem with the file: name the key that chose it
            raise preflight.data_error(e) from None
        print(
            f"data: {self.ds.path} ({self.ds.mode}) train {len(self.ds.train)} / val "
            f"{len(self.ds.val)} / test {len(self.ds.test)}, {len(self.ds.classes)} classes x "
            f"{len(self.ds.snrs)} SNRs ({time.time() - t0:.1f} s)",
            flush=True,
        )
        if len(self.ds.train) == 0:
            raise UserError("the train split is empty: raise data.frames_per_cell or the split")
        n_mod, n_snr = len(self.ds.classes), len(self.ds.snrs)
        self.built = b = build(cfg, self.device, n_mod, n_snr, seed_from)
        self.dist.wrap(b, t.compile, t.lr_scale)  # several processes: DDP, train.lr_scale
        self._share_cpu(force=True)
        self.eval_batch = t.batch_size * 2
        self.steps_per_epoch = len(self._train_batches(0))
        self.schedule = Schedule(
            b.optimizer, t.scheduler, t.epochs * self.steps_per_epoch,
            t.warmup_epochs * self.steps_per_epoch, metric=t.select_metric,
        )  # fmt: skip
        self.train_acc = Accumulator(n_mod, n_snr, self.device)
        self.nonfinite = torch.full((2,), -1, dtype=torch.int64, device=self.device)
        if self.resume:
            self._restore()
        if cfg.health.enabled and self.dist.is_main:
            self.health = health.Monitor(cfg.health, t.select_metric)
            if self.resume:  # the verdicts and epochs so far (a resume from best.pt: up to it)
                self.health.restore(read_events(self.run.events), self.epoch)
        self.params = count_params(b.model)
        self.event(
            "start", run_id=self.meta.get("id", self.run.path.name),
            name=self.meta.get("name", self.run.path.name), device=str(self.device),
            world_size=self.dist.world, global_batch=t.batch_size * self.dist.world,
            n_train=len(self.ds.train), n_val=len(self.ds.val),
            n_test=len(self.ds.test), classes=self.ds.classes, snrs=self.ds.snrs,
            params=self.params, arch=resolve_arch(m.arch), resumed=self.resume,
            epoch=self.epoch, step=self.step, batch=self.batch_in_epoch, data_mode=self.ds.mode,
            amp=b.amp, steps_per_epoch=self.steps_per_epoch, threads=torch.get_num_threads(),
            started_at=self.started.get("started_at"),
        )  # fmt: skip
        self.status(epoch=self.epoch, step=self.step, best=self.best)
        print(
            f"model: {resolve_arch(m.arch)} {self.params:,} parameters, {im.channels}x{im.size}"
            f"x{im.size} images, amp {b.amp}, {self.steps_per_epoch} steps/epoch",
            flush=True,
        )
        self._runlog()

    def _restore(self) -> None:
        trainstate.restore(self)

    # ----------------------------------------------------------------- checkpoints

    def save(self, which: str, best: dict[str, Any] | None = None) -> None:
        """Write last.pt or best.pt (`best`: the new best it records, which becomes
        self.best only once the file is written: status.json never names a best epoch whose
        file does not exist). The event says how long the write took and its size. Every
        rank calls it at the same point (the capture sums the ranks' counters); rank 0 alone
        writes and the others wait for the file."""
        path = self.run.best_ckpt if which == "best" else self.run.last_ckpt
        t0 = time.perf_counter()
        state = trainstate.capture(self)
        if best is not None:
            state["best"] = best
        if self.dist.is_main:
            size = ckpt.save(path, state)
            self.event(
                "checkpoint", epoch=self.epoch, step=self.step, batch=self.batch_in_epoch,
                path=str(path), best=which == "best",
                seconds=round(time.perf_counter() - t0, 4), bytes=size,
            )  # fmt: skip
        self.dist.barrier()
        if best is not None:
            self.best = best
        if which == "last":
            self._last_save = time.monotonic()

    def _share_cpu(self, force: bool = False) -> None:
        threads.share_cpu(self, force)

    # ----------------------------------------------------------------- training

    def _train_batches(self, epoch_index: int) -> list[np.ndarray]:
        """Batches of epoch `epoch_index` (0-based): the data order depends only on (seed,
        epoch), so a resumed run sees exactly the batches it would have seen."""
        cfg = self.cfg
        assert cfg is not None
        order = self.ds.train.order(epoch_index, cfg.train.seed, cfg.data.shuffle)
        # several processes: global batches of batch_size x world, each rank its stride
        t = cfg.train
        return self.dist.plan_train(order, t.batch_size, t.max_steps_per_epoch, t.drop_last)

    def _check_finite(self) -> None:
        where, row = self.dist.first_bad(self.nonfinite)  # all ranks' flags: " on rank N"
        bad = dict(zip(("modulation", "SNR"), row, strict=True))
        hit = {task: at for task, at in bad.items() if at >= 0}
        if hit:
            at = min(hit.values())
            tasks = " and ".join(t for t, s in hit.items() if s == at)
            what = (
                f"non-finite {tasks} loss (NaN or inf){where} at step {at} (epoch {self.epoch + 1})"
            )
            if self.health is not None:  # recorded before the run fails (rank 0)
                self._health_event(self.health.non_finite(what, self.epoch + 1, at))
            raise NonFinite(f"{what}; lower train.lr or set train.grad_clip")

    def train(self) -> None:
        cfg = self.cfg
        assert cfg is not None
        t = cfg.train
        log_every = cfg.run.step_log_every
        # on the CPU a check costs nothing; on CUDA it is a sync, so only at log points
        # (check_every divides log_every: every log point has been checked already)
        check_every = 1 if self.device.type == "cpu" else log_every
        save_every_s = cfg.run.checkpoint_minutes * 60.0  # 0: at epoch ends only
        pause_at = take_pause_step(self.run) if self.dist.is_main else None  # tests only
        self._last_save = time.monotonic()
        while self.epoch < t.epochs and not self.stopped_early:
            if self.dist.agree(self.stop_requested):  # all ranks stop together
                self.save("last")
                raise Stopped
            epoch_no = self.epoch + 1
            self._share_cpu(force=self.epoch > 0)
            batches = self._train_batches(self.epoch)
            t_epoch = time.perf_counter()
            t_log, samples_log = time.perf_counter(), 0
            self.built.model.train()
            if self.batch_in_epoch == 0:
                self.train_acc.reset()
                self.epoch_samples, self.epoch_train_s = 0, 0.0
            t_train0, train_s0 = time.perf_counter(), self.epoch_train_s
            feed = Feed(self.ds.train, batches, self.device, start=self.batch_in_epoch)
            for iq, mod, snr in feed:
                st = self.built.train_step(self.built.images(iq), mod, snr)
                lm, ls = st.loss_mod, st.loss_snr
                self.schedule.step()
                self.step += 1
                self.batch_in_epoch += 1
                b = int(mod.shape[0])
                self.epoch_samples += b
                samples_log += b
                self.train_acc.update(st.mod_logits, st.snr_logits, mod, snr, lm, ls)
                finite = torch.stack([torch.isfinite(lm), torch.isfinite(ls)])
                self.nonfinite = torch.where(
                    (~finite) & (self.nonfinite < 0), self.step, self.nonfinite
                )
                if self.step % check_every == 0:
                    self._check_finite()
                if self.step % log_every == 0:
                    now = time.perf_counter()
                    lm_v, ls_v, tot_v = (float(v) for v in torch.stack([lm, ls, st.total]).tolist())
                    self.event(
                        "step", epoch=epoch_no, step=self.step, loss=round(lm_v + ls_v, 6),
                        loss_mod=round(lm_v, 6), loss_snr=round(ls_v, 6), objective=round(tot_v, 6),
                        lr=self.schedule.lr(), samples_per_s=round(self.dist.world * samples_log / max(now - t_log, 1e-9), 2),
                        batch=self.batch_in_epoch, batches=len(batches),
                    )  # fmt: skip
                    t_log, samples_log = now, 0
                self.epoch_train_s = train_s0 + time.perf_counter() - t_train0
                if self.step == pause_at:
                    pause_at = self._pause()
                due = save_every_s and time.monotonic() - self._last_save >= save_every_s
                if self.dist.agree(bool(due)):  # ranks' clocks differ: the save is collective
                    self._check_finite()  # never a diverged state as last.pt
                    self.save("last")  # with the position in the epoch: a resume continues here
                self._share_cpu()
                if self.dist.agree(self.stop_requested, f"stop at step {self.step}"):
                    feed.close()
                    self._check_finite()
                    self.save("last")
                    raise Stopped
            self._check_finite()
            self.epoch_train_s = train_s0 + time.perf_counter() - t_train0
            self.end_epoch(epoch_no, t_epoch)

    def end_epoch(self, epoch_no: int, t_epoch: float) -> None:
        cfg = self.cfg
        assert cfg is not None
        train_sum = self.dist.summary(self.train_acc)  # summed over the ranks
        val_sum = self.evaluate(self.ds.val)
        train_m, val_m = train_sum.metrics(), val_sum.metrics()
        event = report.epoch_event(
            epoch_no, train_m, val_m, self.epoch_samples * self.dist.world, self.epoch_train_s,
            self.schedule.lr(), self.built.weighting,
        )  # fmt: skip
        select = cfg.train.select_metric
        value = contract.metric_value(event, select)
        new_best = None
        if contract.is_better(value, self.best["value"] if self.best else None, select):
            new_best = {"metric": select, "value": value, "epoch": epoch_no}
            event["is_best"] = True
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        # the epoch is complete from here on: state for checkpoints
        self.epoch = epoch_no
        self.batch_in_epoch = 0
        self.schedule.end_epoch(value)
        patience = cfg.train.early_stop_patience
        if patience and self.bad_epochs >= patience:
            self.stopped_early = True
        export_dir = self.run.epoch_export(epoch_no)
        event["epoch_time_s"] = round(time.perf_counter() - t_epoch, 3)
        self._export(export_dir, val_sum, "val", event)
        self.last_epoch_event = event
        # DWA sees the epoch's mean losses; the event reports the weights used during it
        self.weighting_pending = {"mod": train_m["loss_mod"], "snr": train_m["loss_snr"]}
        if new_best is not None:
            self.save("best", best=new_best)
        self.built.weighting.end_epoch(self.weighting_pending)
        self.weighting_pending = None
        last_epoch = epoch_no >= cfg.train.epochs or self.stopped_early
        if epoch_no % cfg.run.checkpoint_every == 0 or last_epoch:
            self.save("last")
        self.event("epoch", **event)
        self.status(epoch=self.epoch, step=self.step, best=self.best, heartbeat_at=time.time())
        print(report.epoch_line(event, cfg.train.epochs), flush=True)
        self._check_health(event, val_sum)
        if self.stopped_early:
            print(
                f"early stop: no improvement of {select} for {self.bad_epochs} epochs", flush=True
            )
        self._runlog()

    def _check_health(self, event: dict[str, Any], val_sum: Summary) -> None:
        """The health rules on this epoch (rank 0): each change a `health` event and a
        train.log line, the active ones in status.json; a rule in run.stop_on stops the run."""
        if self.health is None:
            return
        cells = val_sum.cells  # (n_mod, n_snr, fields): frames, mod ok, snr ok, ...
        counts = health.Counts(
            n=int(cells[..., 0].sum()),
            correct={"mod": int(cells[..., 1].sum()), "snr": int(cells[..., 2].sum())},
            per_class={
                "mod": [int(v) for v in cells[..., 0].sum(axis=1)],
                "snr": [int(v) for v in cells[..., 0].sum(axis=0)],
            },
        )
        changes = self.health.epoch_end(event, counts, list(self._gpu_util), time.time(), self.step)
        for finding in changes:
            self._health_event(finding)

    def _health_event(self, f: health.Finding) -> None:
        cfg = self.cfg
        stop = f.active and cfg is not None and f.rule in cfg.run.stop_on
        self.event(
            "health", rule=f.rule, active=f.active, epoch=f.epoch, step=f.step,
            message=f.message, values=f.values, action="stop" if stop else None,
        )  # fmt: skip
        if self.health is not None:
            self.status(health=self.health.status())
        print(f"health: {f.message}" + (" -> stopping (run.stop_on)" if stop else ""), flush=True)
        if stop and self.stop_reason is None:
            self.stop_reason = health.stop_reason(f.rule)
            self.stop_requested = True  # all ranks agree on it before the next epoch

    def _export(self, folder: Path, summary: Summary, split: str, fields: dict[str, Any]) -> None:
        if not self.dist.is_main:  # rank 0 alone writes exports
            return
        cfg = self.cfg
        assert cfg is not None
        with ckpt.disk_full_as_error(folder):
            self._write_export(folder, summary, split, fields, cfg)
        self.event("export", epoch=fields.get("epoch", self.epoch), dir=str(folder), split=split)

    def _write_export(
        self, folder: Path, summary: Summary, split: str, fields: dict[str, Any], cfg: Config
    ) -> None:
        write_export(
            folder, summary, self.ds.classes, self.ds.snrs,
            {
                **fields,
                "split": split,
                "metrics": report.rounded(summary.metrics()),
                "run_id": self.meta.get("id", self.run.path.name),
                "run_name": self.meta.get("name", self.run.path.name),
                "split_sizes": {k: len(v) for k, v in self.ds.splits.items()},
                "select_metric": cfg.train.select_metric,
            },
        )  # fmt: skip

    def evaluate(self, source: Any, save_on_stop: bool = True) -> Summary:
        """One pass over a split; stops (raising Stopped) when asked, after saving last.pt
        unless `save_on_stop` is off (the final pass runs on best weights)."""
        n_mod, n_snr = len(self.ds.classes), len(self.ds.snrs)
        summary = evaluate(
            self.built, source, n_mod, n_snr, self.eval_batch, lambda: self.stop_requested,
            dist=self.dist,
        )  # fmt: skip
        if summary is None:
            if save_on_stop:
                self.save("last")
            raise Stopped
        return summary

    # ----------------------------------------------------------------- final

    def final(self) -> None:
        """The test split with the best checkpoint -> export/final."""
        cfg = self.cfg
        assert cfg is not None
        if self.dist.agree(self.stop_requested):
            raise Stopped  # last.pt was written at the end of the last epoch
        best_epoch = self.best["epoch"] if self.best else self.epoch
        if self.run.best_ckpt.is_file():
            state = ckpt.load(self.run.best_ckpt)
            self.built.model.load_state_dict(state["model"])
            self.built.weighting.load_state_dict(state["weighting"])
        if len(self.ds.test) == 0:
            print(
                "final: the test split is empty (data.split gives it 0); no final export",
                flush=True,
            )
            return
        test_sum = self.evaluate(self.ds.test, save_on_stop=False)
        metrics = report.rounded(test_sum.metrics())
        best_summary = self.last_epoch_event or {}
        if best_summary.get("epoch") != best_epoch:
            export = self.run.epoch_export(best_epoch) / contract.SUMMARY_FILE
            best_summary = read_json(export) or {}
        fields = report.final_fields(
            best_epoch, self.best, metrics, self.built.weighting, self.epoch, self.stopped_early,
            best_summary,
        )  # fmt: skip
        self._export(self.run.final_export, test_sum, "test", fields)
        print(report.final_line(best_epoch, metrics), flush=True)
