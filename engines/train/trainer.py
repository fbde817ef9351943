"""The trainer: one process, or several under ``torchrun`` (DDP; nccl on GPUs, gloo on CPU).

Each epoch: augmented batches (mosaic switched off for the last ``close_mosaic`` epochs),
warm-up then cosine learning rate, gradient accumulation to a nominal batch of 64, AMP on CUDA,
gradient clipping, EMA of the weights; then validation of the EMA model, ``last`` and ``best``
checkpoints, a row in ``results.csv`` and an updated ``results.png`` (redrawn at most every
:data:`PLOT_EVERY_S` seconds, and after the last epoch).
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from detstream.engines.data.detection import DetectionSource
from detstream.engines.data.loader import TrainDataset, build_loader
from detstream.engines.errors import UserInputError
from detstream.engines.models import Detector
from detstream.engines.models.checkpoint import (
    load_checkpoint,
    load_tensors,
    load_weights,
    read_sidecar,
    save_checkpoint,
)
from detstream.engines.paths import writable_dir
from detstream.engines.progress import progress_bar
from detstream.engines.spec import ModelSpec, check_input_size
from detstream.engines.train.config import TrainConfig
from detstream.engines.train.ema import ModelEMA
from detstream.engines.train.identity import IdentityLoss
from detstream.engines.train.loss import DetectionLoss
from detstream.engines.train.optim import Schedule, build_optimizer
from detstream.engines.train.plots import plot_results
from detstream.engines.train.precision import autocast_dtype
from detstream.engines.train.validate import ModuleBackend, evaluate

NOMINAL_BATCH = 64
#: ``results.png`` is redrawn at most this often (seconds), and always after the run's last
#: epoch: drawing it takes about 0.3 s, longer than a whole epoch of a small dataset
#: (``results.csv`` is written after every epoch).
PLOT_EVERY_S = 10.0
RESULT_FIELDS = ("epoch", "train/box", "train/cls", "train/dfl", "train/id", "precision", "recall",
                 "f1", "map50", "map50_95", "lr", "seconds", "images_per_s")


def resolve_device(name: str) -> torch.device:
    """A torch device from ``cpu``, ``cuda`` or ``cuda:N``, with a clear error when absent."""
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserInputError(f"--device {name}: no CUDA device is visible here; "
                                 "use --device cpu")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserInputError(f"--device {name}: only {torch.cuda.device_count()} CUDA "
                                 "device(s) exist")
        return device
    raise UserInputError(f"--device {name!r} is not cpu, cuda or cuda:N")


def _clock(seconds: float) -> str:
    """``H:MM:SS`` for a duration in seconds."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Trainer:
    """Train a detector as described by a :class:`TrainConfig`.

    Args:
        config: the run's configuration.
        resume: continue the run in ``config.out`` from its ``last`` checkpoint.
    """

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if resume:
            config = self._resume_config(config)
        self.config = config
        device = resolve_device(config.device)
        if self.world > 1:
            if device.type == "cuda":
                device = torch.device("cuda", local_rank)
                torch.cuda.set_device(device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            if device.type == "cpu":  # share the cores between the processes
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.world))
        self.device = device
        if config.batch % self.world:
            raise UserInputError(f"--batch {config.batch} must divide evenly over "
                                 f"{self.world} processes")
        check_input_size(config.imgsz, 32)
        torch.manual_seed(config.seed)

        self.train_source = DetectionSource.from_yolo(config.data, "train")
        self.val_source = DetectionSource.from_yolo(config.data, "val")
        names = self.train_source.class_names
        self.spec = ModelSpec(name=f"detstream-{config.model}", class_names=names,
                              input_size=(config.imgsz, config.imgsz),
                              embed_dim=config.embed_dim)
        if config.freeze not in ("none", "detector"):
            raise UserInputError(f"--freeze {config.freeze!r}: use none or detector")
        if config.freeze == "detector" and not (config.embed_dim and config.weights):
            raise UserInputError("--freeze detector trains only the embedding head: pass "
                                 "--embed-dim and the detector to keep with --weights")
        model = Detector(config.model, len(names), embed_dim=config.embed_dim)
        model.head.reset_bias(config.imgsz)
        if config.weights is not None:
            self._start_from(model, config.weights, len(names))
        if config.freeze == "detector":
            for param in model.detector_parameters():
                param.requires_grad_(False)
        writable_dir(config.out)  # inputs read: a run that could not save is not started
        # Channels-last convolutions run ~1.3x faster on CPU (oneDNN) and suit AMP on CUDA.
        self.model = model.to(device, memory_format=torch.channels_last)
        self.ema = ModelEMA(self.model, config.ema_decay)

        self.local_batch = config.batch // self.world
        self.dataset = TrainDataset(self.train_source, config.imgsz, config.augment, config.seed,
                                    identities=config.embed_dim > 0)
        # The identity classifier is a training aid: optimised with the model, never shipped.
        self.identity = (IdentityLoss(config.embed_dim, self.dataset.num_identities).to(device)
                         if config.embed_dim else None)
        self.loss_fn = DetectionLoss(num_classes=len(names), reg_max=model.reg_max,
                                     identity=self.identity, id_gain=config.id_gain)
        batches = math.ceil(len(self.dataset) / config.batch)
        self.accumulate = max(1, round(NOMINAL_BATCH / config.batch))
        optimizer_name, lr0 = self._choose_optimizer(batches, len(names))
        decay = config.weight_decay * config.batch * self.accumulate / NOMINAL_BATCH
        trained = nn.ModuleList([self.model] + ([self.identity] if self.identity else []))
        self.optimizer = build_optimizer(trained, optimizer_name, lr0, config.momentum, decay)
        self.schedule = Schedule(lr0=lr0, lrf=config.lrf, epochs=config.epochs,
                                 warmup_iters=(max(100, round(config.warmup_epochs * batches))
                                               if config.warmup_epochs > 0 else 0),
                                 momentum=config.momentum)
        self.amp_dtype = autocast_dtype(device, config.amp)
        # Only float16 needs loss scaling; bfloat16 has float32's exponent range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.optimizer_name = optimizer_name
        self.start_epoch = 0
        self.best_fitness = -1.0
        self.results: list[dict[str, Any]] = []
        self._plotted = -math.inf  # time.monotonic() of the last results.png
        self.out = Path(config.out)
        if resume:
            self._restore()
        self.train_model: nn.Module = self.model
        if self.world > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)

    # ---------------------------------------------------------------- set-up helpers
    @staticmethod
    def _start_from(model: Detector, weights: Path, num_classes: int) -> None:
        """Load ``weights`` into ``model``; an embedding head the checkpoint lacks starts
        fresh (adding appearance to a trained detector)."""
        start, _, _ = load_checkpoint(weights)
        if start.num_classes != num_classes or start.size != model.size:
            raise UserInputError(
                f"--weights {weights} is a {start.size} model with {start.num_classes} "
                f"classes; the run needs {model.size} with {num_classes}")
        if start.embed_dim not in (0, model.embed_dim):
            raise UserInputError(f"--weights {weights} embeds in {start.embed_dim} dimensions; "
                                 f"the run asks for {model.embed_dim} (--embed-dim)")
        state = start.state_dict()
        if start.embed_dim == model.embed_dim:
            model.load_state_dict(state)
            return
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not key.startswith("embed.") for key in missing):
            raise UserInputError(f"--weights {weights} does not match the model's detector")

    def _choose_optimizer(self, batches: int, num_classes: int) -> tuple[str, float]:
        cfg = self.config
        name = cfg.optimizer
        steps = cfg.epochs * batches / self.accumulate
        if name == "auto":
            name = "sgd" if steps > 10_000 else "adamw"
        if cfg.lr0 is not None:
            return name, cfg.lr0
        return name, (0.01 if name == "sgd" else round(0.002 * 5 / (4 + num_classes), 6))

    @staticmethod
    def _resume_config(config: TrainConfig) -> TrainConfig:
        last = Path(config.out) / "weights" / "last.safetensors"
        sidecar = read_sidecar(last)
        if "train_state" not in sidecar:
            raise UserInputError(f"{last} holds no training state; it cannot be resumed")
        saved = TrainConfig.from_dict(sidecar["train_args"])
        # The run continues as it was configured; only where it runs, and where it stops,
        # may change.
        return replace(saved, device=config.device, workers=config.workers, out=config.out,
                       stop_after=config.stop_after)

    def _restore(self) -> None:
        last = self.out / "weights" / "last.safetensors"
        sidecar = read_sidecar(last)
        tensors = load_tensors(last)
        state = sidecar["train_state"]
        load_weights(self.ema.module, {k[6:]: v for k, v in tensors.items()
                                       if k.startswith("model.")}, last)
        load_weights(self.model, {k[12:]: v for k, v in tensors.items()
                                  if k.startswith("train.model.")}, last)
        self.ema.updates = int(state["ema_updates"])
        optim_state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("train.optim."):
                index, name = key[len("train.optim."):].split(".", 1)
                optim_state.setdefault(int(index), {})[name] = value
        groups = state["param_groups"]
        current = self.optimizer.state_dict()
        for group, saved in zip(current["param_groups"], groups, strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
        current["state"] = optim_state
        self.optimizer.load_state_dict(current)
        if self.identity is not None:
            load_weights(self.identity, {k[15:]: v for k, v in tensors.items()
                                         if k.startswith("train.identity.")}, last)
        if state.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(sidecar["epoch"])
        self.best_fitness = float(state["best_fitness"])
        self.results = list(state.get("results", []))
        self.ema.module.to(self.device)

    # ---------------------------------------------------------------- the loop
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def fit(self) -> Path:
        """Train to the last epoch; returns the path of the best checkpoint."""
        cfg = self.config
        end = cfg.last_epoch
        if self.start_epoch >= end:
            raise UserInputError(f"run {self.out} already finished its {end} epochs")
        (self.out / "weights").mkdir(parents=True, exist_ok=True)
        if self.is_main:
            precision = str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "float32"
            of = f" of {cfg.epochs}" if end < cfg.epochs else ""
            print(f"training {self.spec.name} on {self.device} ({precision}), "
                  f"{len(self.dataset)} images, batch {cfg.batch}, epochs "
                  f"{self.start_epoch + 1}-{end}{of}")
        loader = None
        mosaic_on = None
        for epoch in range(self.start_epoch, end):
            want_mosaic = epoch < cfg.epochs - cfg.close_mosaic
            if loader is None or want_mosaic != mosaic_on:
                # Workers hold a copy of the dataset: rebuild the loader when mosaic switches.
                self.dataset.mosaic_enabled = want_mosaic
                loader = build_loader(self.dataset, self.local_batch, cfg.workers, shuffle=True,
                                      distributed=self.world > 1, seed=cfg.seed)
                mosaic_on = want_mosaic
            row = self._train_epoch(epoch, loader)
            if self.is_main:
                self._end_epoch(epoch, row)
            if self.world > 1:
                dist.barrier()
        if self.world > 1:
            dist.destroy_process_group()
        return self.out / "weights" / "best.safetensors"

    def _train_epoch(self, epoch: int, loader: torch.utils.data.DataLoader) -> dict[str, Any]:
        cfg = self.config
        self.dataset.set_epoch(epoch)
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        self.train_model.train()
        if cfg.freeze == "detector":
            # Frozen layers also keep their batch-norm statistics: the detector stays exact.
            learning = {id(m) for m in self.model.embed.modules()}
            for module in self.model.modules():
                if isinstance(module, nn.BatchNorm2d) and id(module) not in learning:
                    module.eval()
        batches = len(loader)
        sums = torch.zeros(4)
        seen = 0
        start = time.perf_counter()
        bar = progress_bar(loader, total=batches, disable=not self.is_main,
                           desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        self.optimizer.zero_grad(set_to_none=True)
        for i, (images, targets, _) in enumerate(bar):
            iteration = epoch * batches + i
            self.schedule.apply(self.optimizer, iteration, epoch + i / batches)
            images = images.to(self.device, non_blocking=True).float().div_(255.0)
            images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                out = self.train_model(images)
            out = out._replace(box=out.box.float(), cls=out.cls.float())  # loss in float32
            total, parts = self.loss_fn(out, targets.to(self.device))
            if self.world > 1:
                total = total * self.world  # DDP averages gradients over processes
            self.scaler.scale(total).backward()
            if (i + 1) % self.accumulate == 0 or i + 1 == batches:
                self.scaler.unscale_(self.optimizer)
                if self.world > 1 and self.identity is not None:
                    self._average_identity_grads()
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.ema.update(self.model)
            sums += parts.cpu()
            seen += images.shape[0]
            elapsed = time.perf_counter() - start
            rate = seen * self.world / elapsed
            mean = sums / (i + 1)
            # The bar's own ETA covers this epoch; this one covers the whole run (sans validation).
            left = (cfg.last_epoch - epoch - 1) * batches + batches - i - 1
            eta = _clock(left * elapsed / (i + 1))
            ident = f"id {mean[3]:.3f} " if self.identity is not None else ""
            bar.set_postfix_str(f"box {mean[0]:.3f} cls {mean[1]:.3f} dfl {mean[2]:.3f} "
                                f"{ident}inst {len(targets)} {rate:.1f} img/s run eta {eta}")
        bar.close()
        seconds = time.perf_counter() - start
        mean = sums / max(batches, 1)
        return {"epoch": epoch + 1, "train/box": float(mean[0]), "train/cls": float(mean[1]),
                "train/dfl": float(mean[2]), "train/id": float(mean[3]),
                "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 2),
                "images_per_s": round(seen * self.world / max(seconds, 1e-9), 2)}

    def _average_identity_grads(self) -> None:
        """The identity classifier sits outside DDP: average its gradients by hand, scaled
        as DDP scales the model's (each process's loss is multiplied by the world size)."""
        for param in self.identity.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad /= self.world

    def _end_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        cfg = self.config
        backend = ModuleBackend(self.ema.module, self.spec, self.device)
        result = evaluate(backend, self.val_source, batch=self.local_batch * 2,
                          workers=cfg.workers, progress=True)
        row.update({"precision": result.precision, "recall": result.recall, "f1": result.f1,
                    "map50": result.map50, "map50_95": result.map50_95})
        self.results.append(row)
        fitness = 0.1 * result.map50 + 0.9 * result.map50_95
        # With the detector frozen its accuracy cannot change: the embedding of the latest
        # epoch, furthest down the schedule, is the one to ship.
        is_best = fitness > self.best_fitness or cfg.freeze == "detector"
        self.best_fitness = max(fitness, self.best_fitness)
        metrics = result.to_json()
        info = {"epoch": epoch + 1, "train_args": cfg.to_dict(), "metrics": metrics,
                "optimizer": self.optimizer_name}
        train_tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.identity is not None:
            train_tensors.update({f"identity.{k}": v
                                  for k, v in self.identity.state_dict().items()})
        optim = self.optimizer.state_dict()
        for index, values in optim["state"].items():
            for name, value in values.items():
                train_tensors[f"optim.{index}.{name}"] = torch.as_tensor(value)
        state = {"ema_updates": self.ema.updates, "best_fitness": self.best_fitness,
                 "param_groups": optim["param_groups"], "results": self.results,
                 "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None}
        weights = self.out / "weights"
        save_checkpoint(weights / "last.safetensors", self.ema.module, self.spec,
                        {**info, "train_state": state}, train_tensors)
        if is_best:
            # ``best`` is the release file: EMA weights only, in FP16 (as Ultralytics strips).
            save_checkpoint(weights / "best.safetensors", self.ema.module, self.spec, info,
                            half=True)
        self._write_results(last=epoch + 1 == cfg.last_epoch)
        print(f"epoch {epoch + 1}/{cfg.epochs}: mAP50 {result.map50:.4f} "
              f"mAP50-95 {result.map50_95:.4f} P {result.precision:.3f} R {result.recall:.3f}"
              f"{'  (best)' if is_best else ''}", flush=True)

    def _write_results(self, last: bool) -> None:
        with (self.out / "results.csv").open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=RESULT_FIELDS)
            writer.writeheader()
            for row in self.results:
                writer.writerow({k: row.get(k) for k in RESULT_FIELDS})
        if last or time.monotonic() - self._plotted >= PLOT_EVERY_S:
            plot_results(self.results, self.out / "results.png")
            self._plotted = time.monotonic()
