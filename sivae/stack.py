"""Many runs as one: R independent MLP (encoder, decoder) pairs trained with stacked weights.

A 2D run (3x256 MLPs, batch 128-512) is small: one run at a time leaves most of a device idle
(on a GPU its cost is kernel launches and Python, not arithmetic). `StackTrainer` trains R runs in
one process as one set of batched matrix products: layer l of every run is one weight tensor of
shape (R, out, in), applied with `torch.baddbmm` to an (R, B, in) batch.

Each run keeps its own everything that makes it a run: seed (initial weights, data and noise
generators, drawn exactly as `sivae.train.Trainer` draws them), data (its own `batch_fn`, so a
stack may mix datasets) and loss weights (beta_rec, beta_kl, beta_neg, m as (R, 1) tensors; the
losses of `sivae.losses` reduce over the last dimension, so they return the R losses at once).
Adam is elementwise, so one Adam over the stacked parameters is R independent Adams; the R losses
are summed for one backward, which keeps their gradients apart because their parameters are
disjoint. Each run's trajectory is therefore the single-run Trainer's with the same configuration
(tests/test_stack.py checks it in float64 to 1e-10, for every method, on mixed stacks).

What must be shared within a stack: the method, the network shapes, and the schedule (n_iter,
batch_size, lr, lr_milestones, lr_gamma, num_vae, gamma_r, alpha, scale). Runs of different
methods go in separate stacks (`stack_groups` sorts configurations into them).

A run that diverges (non-finite loss, or above max_loss) is reported by name and step and frozen
at its weights of that moment while the others go on; the whole stack raises DivergenceError only
when every run has diverged. Checkpoints (`last.pt` in ckpt_dir: every run's weights, optimiser
moments, generators, history and kept states) resume bit-identically on the CPU, as the Trainer's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from . import losses as L
from .checkpoints import FORMAT, IDENTITY_KEYS, load_checkpoint
from .engine import Engine
from .errors import CheckpointError, ConfigError, DivergenceError
from .lifecycle import ConfigurationChanged
from .runinfo import live_curve
from .runtime import resolve_device
from .train import TrainConfig

__all__ = ["StackRun", "StackedMLP", "StackTrainer", "stack_groups", "SHARED_FIELDS", "PER_RUN_FIELDS"]

KIND = "stack-v1"   # the "kind" key of a stack checkpoint (a single run's has none)
# TrainConfig fields every run of one stack must share, and those each run may set itself
SHARED_FIELDS = ("method", "n_iter", "batch_size", "lr", "lr_milestones", "lr_gamma", "num_vae", "gamma_r", "alpha",
                 "scale", "autocast")
PER_RUN_FIELDS = ("seed", "beta_rec", "beta_kl", "beta_neg", "m")
REQUIRED = ("runs", "encoder", "decoder", "opt_e", "opt_d", "sched_e", "sched_d", "data_gens", "noise_gens", "history",
            "diverged", "kept_states", "frozen")


@dataclass
class StackRun:
    """One run of a stack: a name (unique in the stack), its networks (initialised as the run's Trainer
    would get them), its data (batch_fn(step, generator) -> (B, d_x) tensor) and its TrainConfig."""
    name: str
    encoder: nn.Module
    decoder: nn.Module
    batch_fn: Callable[[int, torch.Generator], Tensor]
    config: TrainConfig
    keep_states_at: tuple = field(default_factory=tuple)


def _linear_layers(net: nn.Module, what: str) -> list[nn.Linear]:
    """The Linear layers of an MLP (a Sequential of Linear / ReLU, possibly as `net.net`), or ConfigError."""
    seq = net.net if isinstance(getattr(net, "net", None), nn.Sequential) else net
    if not isinstance(seq, nn.Sequential) or len(seq) == 0:
        raise ConfigError(f"{what}: the stack trains MLPs (an nn.Sequential of Linear and ReLU layers), "
                          f"got {type(net).__name__}")
    kinds = [type(m) for m in seq]
    expected = [nn.Linear if i % 2 == 0 else nn.ReLU for i in range(len(seq))]
    if kinds != expected or len(seq) % 2 == 0:
        raise ConfigError(f"{what}: the stack trains MLPs of alternating Linear and ReLU layers ending in a Linear, "
                          f"got {[k.__name__ for k in kinds]}")
    return [m for m in seq if isinstance(m, nn.Linear)]


class StackedMLP(nn.Module):
    """R MLPs of one shape as one module: layer l holds weight (R, out, in) and bias (R, out).

    forward(x): x (R, B, in) -> (R, B, out), run r computing exactly what MLP r computes on x[r].
    """

    def __init__(self, nets: list[nn.Module], what: str = "network"):
        super().__init__()
        layers = [_linear_layers(n, f"{what} {i}") for i, n in enumerate(nets)]
        shapes = [[tuple(lin.weight.shape) for lin in ls] for ls in layers]
        if any(s != shapes[0] for s in shapes):
            raise ConfigError(f"{what}s of one stack must have the same layer shapes, got {sorted(set(map(str, shapes)))}")
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].weight.detach() for ls in layers]).clone()) for i in range(len(layers[0]))])
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].bias.detach() for ls in layers]).clone()) for i in range(len(layers[0]))])
        self._originals = layers   # the per-run Linear layers, filled in by export()
        # state_dict key prefixes of the Linear layers in their run's module (the same for every run)
        names = {id(m): k for k, m in nets[0].named_modules()}
        self.prefixes = [names[id(lin)] for lin in layers[0]]

    @property
    def runs(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            if i < last:
                x = torch.relu(x)
        return x

    def run_state(self, r: int) -> list[tuple[Tensor, Tensor]]:
        """(weight, bias) of every layer of run r (copies)."""
        return [(w[r].detach().clone(), b[r].detach().clone()) for w, b in zip(self.weights, self.biases)]

    def export(self, r: int):
        """Copy run r's weights into its original module (the one given to the stack) and return nothing."""
        with torch.no_grad():
            for lin, w, b in zip(self._originals[r], self.weights, self.biases):
                lin.weight.copy_(w[r])
                lin.bias.copy_(b[r])


def stack_groups(configs: dict, max_runs: int | None = None) -> list[list]:
    """Sort {name: TrainConfig} into stacks of runs that may share one StackTrainer (same SHARED_FIELDS),
    each of at most max_runs runs; returns lists of names, in the order given."""
    groups: dict = {}
    for name, cfg in configs.items():
        key = tuple(str(getattr(cfg, f)) for f in SHARED_FIELDS)
        groups.setdefault(key, []).append(name)
    out = []
    for names in groups.values():
        step = max_runs or len(names)
        out += [names[i:i + step] for i in range(0, len(names), step)]
    return out


class StackTrainer(Engine):
    """Train R runs (StackRun) of one method as one stacked model; see the module docstring. The step, loop
    and checkpoints are sivae.engine.Engine's, the single-run Trainer's lines.

    After fit(): `history[name]` (the Trainer's history of each run), `diverged[name]` (step, loss,
    value of each run that diverged), `kept_states[name]` ({step: {"decoder": state_dict}}), and
    `modules(name)` -> the run's (encoder, decoder) with its trained weights.
    """

    batch_dim = 1   # x is (R, B, d_x)
    fuse = True     # MLPs: no batch statistics

    def __init__(self, runs: list[StackRun], ckpt_dir: str | os.PathLike | None = None,
                 device: str | torch.device = "auto", progress: bool | None = None):
        if not runs:
            raise ConfigError("a stack needs at least one run")
        names = [r.name for r in runs]
        if len(set(names)) != len(names):
            raise ConfigError(f"run names of a stack must be unique, got {names}")
        first = runs[0].config
        for r in runs[1:]:
            diff = [f for f in SHARED_FIELDS if getattr(r.config, f) != getattr(first, f)]
            if diff:
                raise ConfigError(f"run {r.name!r} differs from run {runs[0].name!r} in {diff}: runs of one stack share "
                                  f"{', '.join(SHARED_FIELDS)} (use stack_groups to split them)")
        if first.autocast not in ("none", "auto"):
            raise ConfigError(f"the stack trains in the networks' own precision; autocast={first.autocast!r} is not supported")
        self.runs, self.names, self.cfg = runs, names, first
        self.R = len(runs)
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.progress = first.progress if progress is None else progress
        self.enc = StackedMLP([r.encoder for r in runs], "encoder").to(self.device)
        self.dec = StackedMLP([r.decoder for r in runs], "decoder").to(self.device)
        self.z_dim = self.dec.weights[0].shape[2]
        self.x_dim = self.dec.weights[-1].shape[1]
        if self.enc.weights[-1].shape[1] != 2 * self.z_dim or self.enc.weights[0].shape[2] != self.x_dim:
            raise ConfigError(f"encoder ({self.x_dim} -> 2 x d_z) and decoder (d_z = {self.z_dim} -> {self.x_dim}) "
                              f"of the stack do not fit together")
        dtype = self.enc.weights[0].dtype  # the dtype of the loss terms (sivae.losses keeps float32 and float64)

        def col(name):
            return torch.tensor([[float(getattr(r.config, name))] for r in runs], dtype=dtype, device=self.device)
        self.beta_rec, self.beta_kl, self.beta_neg, self.m = (col(n) for n in ("beta_rec", "beta_kl", "beta_neg", "m"))
        self.s = first.scale if first.scale is not None else 1.0 / self.x_dim
        self.max_loss = torch.tensor([float(r.config.max_loss) for r in runs], device=self.device)
        self._setup_training(first.lr, first.n_iter, first.lr_milestones, first.lr_gamma)
        # the generators of each run, seeded as the single-run Trainer seeds them
        self.data_gens = [torch.Generator().manual_seed(r.config.seed) for r in runs]
        self.noise_gens = [torch.Generator(device=self.device).manual_seed(r.config.seed + 1) for r in runs]
        self.ckpt_path = Path(ckpt_dir) / "last.pt" if ckpt_dir is not None else None
        self.history: dict[str, list] = {n: [] for n in names}
        self.diverged: dict[str, dict] = {}
        self.kept_states: dict[str, dict] = {n: {} for n in names}
        self.keep = [frozenset(int(s) for s in r.keep_states_at) for r in runs]
        self.active = torch.ones(self.R, dtype=torch.bool, device=self.device)
        self._frozen: dict[int, tuple] = {}

    # ------------------------------------------------------------------ hooks of the Engine
    def _noise(self, shape, dtype=None) -> Tensor:
        """(R, *shape) standard normal noise in the networks' dtype, run r's slice from run r's generator."""
        dtype = dtype or self.enc.weights[0].dtype
        return torch.stack([torch.randn(shape, generator=g, device=self.device, dtype=dtype) for g in self.noise_gens])

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        return self.dec(z)

    @staticmethod
    def _per_sample(fn, a: Tensor, b: Tensor) -> Tensor:
        """A per-sample term of sivae.losses on (R, B, d) inputs -> (R, B)."""
        R, B = a.shape[:2]
        return fn(a.reshape(R * B, -1), b.reshape(R * B, -1)).view(R, B)

    def _rec(self, x, x_rec):
        return self._per_sample(L.reconstruction_error, x, x_rec)

    def _kl(self, mu, logvar):
        return self._per_sample(L.kl_divergence, mu, logvar)

    def _weights(self) -> dict:
        return {"beta_rec": self.beta_rec, "beta_kl": self.beta_kl, "beta_neg": self.beta_neg, "m": self.m}

    def _scale(self, x: Tensor) -> float:
        return self.s

    def _summary(self, terms: dict) -> tuple[tuple, Tensor]:
        """(keys, (R, len(keys)) values)."""
        return tuple(terms), torch.stack(list(terms.values()), dim=1).detach()

    def _check(self, name: str, loss: Tensor):
        """Mark every active run whose loss is non-finite or above its max_loss as diverged."""
        bad = self.active & ~(torch.isfinite(loss) & (loss.abs() <= self.max_loss))
        if not bool(bad.any()):
            return
        values = loss.detach().cpu().tolist()
        for r in torch.nonzero(bad).flatten().tolist():
            self.diverged[self.names[r]] = {"step": self.step, "loss": name, "value": values[r]}
            print(f"run {self.names[r]!r} diverged at step {self.step}: {name} = {values[r]!r} (method {self.cfg.method}); "
                  f"it is stopped, the other runs go on. Last good checkpoint: {self._last_good()}", flush=True)
            self.active[r] = False
            self._frozen[r] = (self.enc.run_state(r), self.dec.run_state(r))
        if not bool(self.active.any()):
            where = ", ".join(f"{n} at step {d['step']}" for n, d in self.diverged.items())
            raise DivergenceError(f"every run of the stack diverged ({where}); "
                                  f"try a smaller learning rate or beta_neg, or a larger warm-up (num_vae)")

    def _total(self, loss: Tensor) -> Tensor:
        """The sum of the active runs' losses (their parameters are disjoint, so their gradients stay apart)."""
        return torch.where(self.active, loss, torch.zeros_like(loss)).sum()

    def _finish_grads(self, net: StackedMLP):
        """Gradients in the parameter's layout (the gradient of a transposed weight comes back transposed, and
        the fused Adam walks parameter and gradient memory in the same order), zero for the diverged runs."""
        masked = not bool(self.active.all())
        for p in net.parameters():
            g = p.grad.contiguous()
            p.grad = torch.where(self.active.view(-1, *[1] * (g.dim() - 1)), g, torch.zeros_like(g)) if masked else g

    def _after_update(self):
        """Put the diverged runs back to their weights at divergence (Adam moves them with zero gradients)."""
        if not self._frozen:
            return
        with torch.no_grad():
            for r, (enc_state, dec_state) in self._frozen.items():
                for net, state in ((self.enc, enc_state), (self.dec, dec_state)):
                    for w, b, (ws, bs) in zip(net.weights, net.biases, state):
                        w[r] = ws
                        b[r] = bs

    # ------------------------------------------------------------------ loop
    def _next_batch(self) -> Tensor:
        """Every run's next batch, (R, B, d_x) in the networks' dtype."""
        states = [g.get_state() for g in self.data_gens]
        try:
            x = torch.stack([r.batch_fn(self.step, g) for r, g in zip(self.runs, self.data_gens)]).to(self.device)
        except KeyboardInterrupt:
            for g, st in zip(self.data_gens, states):
                g.set_state(st)
            raise
        if x.dim() != 3 or x.shape[2] != self.x_dim:
            raise ConfigError(f"batch_fn must return (batch_size, {self.x_dim}) tensors; the stack got {tuple(x.shape[1:])}")
        return x.to(self.enc.weights[0].dtype)

    def _progress_desc(self) -> str:
        return f"stack of {self.R} {self.cfg.method}"

    def _open_live(self) -> dict:
        """Every run's curve as it grows (sivae.runinfo.live_training)."""
        return {n: w for n in self.names if n not in self.diverged
                and (w := live_curve(n, self.history[n])) is not None}

    def _keep_states(self):
        for r, name in enumerate(self.names):
            if self.step in self.keep[r]:
                self.kept_states[name][self.step] = {"decoder": self._decoder_state(r)}

    def _record(self, out: tuple[tuple, Tensor], live: dict | None):
        keys, values = out
        rows = values.cpu().tolist()
        for r, name in enumerate(self.names):
            if name not in self.diverged:
                self.history[name].append({"step": self.step, **dict(zip(keys, rows[r]))})
        for n, w in (live or {}).items():
            if n not in self.diverged:
                w.log(self.history[n][-1])
        rows = [self.history[n][-1] for n in self.names if n not in self.diverged and self.history[n]]
        return {f"mean {k}": sum(float(h[k]) for h in rows) / len(rows)
                for k in ("rec", "kl_real", "kl_fake") if rows and all(k in h for h in rows)}

    # ------------------------------------------------------------ per run
    def _state(self, net: StackedMLP, r: int) -> dict:
        """Run r's weights under the state_dict keys of its original module."""
        out = {}
        for prefix, (w, b) in zip(net.prefixes, net.run_state(r)):
            out[f"{prefix}.weight"] = w
            out[f"{prefix}.bias"] = b
        return out

    def _decoder_state(self, r: int) -> dict:
        return self._state(self.dec, r)

    def state_dicts(self, name: str) -> tuple[dict, dict]:
        """(encoder, decoder) state dicts of one run, loadable into its original modules."""
        r = self.names.index(name)
        return self._state(self.enc, r), self._state(self.dec, r)

    def modules(self, name: str) -> tuple[nn.Module, nn.Module]:
        """The run's original (encoder, decoder) modules holding its current weights."""
        r = self.names.index(name)
        self.enc.export(r)
        self.dec.export(r)
        return self.runs[r].encoder, self.runs[r].decoder

    # ------------------------------------------------------------ checkpoints
    def _fingerprints(self) -> list:
        # the identity entries of each run's extra (its architecture) too: a stack of other networks is another stack
        return [{"name": r.name, **r.config.fingerprint(),
                 **{k: r.config.extra[k] for k in IDENTITY_KEYS if k in r.config.extra}} for r in self.runs]

    def state_dict(self) -> dict:
        return {"format": FORMAT, "kind": KIND, "step": self.step, "runs": self._fingerprints(),
                **self._training_state(),
                "data_gens": [g.get_state() for g in self.data_gens],
                "noise_gens": [g.get_state().cpu() for g in self.noise_gens],
                "history": self.history, "diverged": self.diverged, "kept_states": self.kept_states,
                "frozen": {str(r): [list(map(list, enc)), list(map(list, dec))] for r, (enc, dec) in self._frozen.items()}}

    def load(self, path: str | os.PathLike):
        state = load_checkpoint(path, map_location=self.device, required=("format", "step"))
        if state.get("kind") != KIND:
            raise CheckpointError(f"{path} is not a stack checkpoint (a single run's checkpoint is resumed by "
                                  f"sivae.train.Trainer); delete it or use another ckpt_dir")
        missing = [k for k in REQUIRED if k not in state]
        if missing:
            raise CheckpointError(f"stack checkpoint {path} lacks {', '.join(missing)}: damaged or written by another "
                                  f"program; delete it to start over")
        if state["runs"] != self._fingerprints():
            then = {d["name"] for d in state["runs"]}
            now = {d["name"] for d in self._fingerprints()}
            what = (f"runs then {sorted(then)}, now {sorted(now)}" if then != now else
                    "the same runs with other settings")
            raise ConfigurationChanged(f"checkpoint {path} was written by another stack ({what}); "
                                       f"delete it or use another ckpt_dir")
        self._load_training_state(state, path, "this stack")
        for g, st in zip(self.data_gens, state["data_gens"]):
            g.set_state(st)
        for g, st in zip(self.noise_gens, state["noise_gens"]):
            g.set_state(st.to(g.get_state().device))
        self.step, self.history = state["step"], state["history"]
        self.diverged, self.kept_states = state["diverged"], state["kept_states"]
        self._frozen = {int(r): tuple([tuple(layer) for layer in part] for part in v) for r, v in state["frozen"].items()}
        for r in self._frozen:
            self.active[r] = False
        self.last_good_step = self.step
