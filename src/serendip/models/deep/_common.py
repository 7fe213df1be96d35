"""What the torch models share: device choice, seeding, the validation carve and early stopping,
state_dict <-> NumPy arrays, a memory estimate, and the training loop skeleton.

torch is imported lazily inside functions, so importing this module (and listing models) stays
cheap; the `nn.Module` classes live in `_nets.py`, imported only when a model is fitted or loaded.
"""

from __future__ import annotations

import contextlib
import math
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, ConfigError
from serendip.models.base import ModelConfig, Recommender, top_k

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADAM_BYTES",
    "DeepConfig",
    "TorchRecommender",
    "ValidationCarve",
    "carve_validation",
    "ndcg_at_k",
    "user_sequences",
]

#: Bytes per float32 parameter while training with Adam: value, gradient, two moments.
ADAM_BYTES = 16


class DeepConfig(ModelConfig):
    """Training knobs every torch model shares.

    device: "auto" = CUDA when available, else CPU.
    early_stopping: hold out `val_share` of the users with at least 5 training items (at most
    `val_max_users` of them), each with 20% of their items (at least one), inside `fit`; keep
    the weights of the epoch with the best validation NDCG@10 and stop after `patience` epochs
    without improvement. refit: then train a fresh model on all the data for that many epochs.
    ema_decay: validate and keep an exponential moving average of the weights, updated once
    per epoch (0 = off); it smooths the epoch-to-epoch noise of small data.
    memory_limit_gb: refuse to fit (CapacityError) when the estimated training memory exceeds
    it, before allocating anything.
    """

    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=256, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    early_stopping: bool = True
    patience: int = Field(default=5, ge=1)
    val_share: float = Field(default=0.2, gt=0, lt=1)
    val_max_users: int = Field(default=2000, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    memory_limit_gb: float = Field(default=8.0, gt=0)
    ema_decay: float = Field(default=0.0, ge=0, lt=1)
    refit: bool = False


# ----------------------------------------------------------------------------- torch helpers
def resolve_device(name: str) -> torch.device:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's RNGs seeded, restoring the caller's RNG state afterwards, so
    weight initialisation and dropout are reproducible without touching global randomness."""
    import torch

    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def state_to_arrays(module: torch.nn.Module, prefix: str = "w.") -> dict[str, np.ndarray]:
    """A module's state_dict as float32/int NumPy arrays named `<prefix><param name>`."""
    return {f"{prefix}{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_arrays(
    module: torch.nn.Module,
    arrays: Mapping[str, Any],
    device: torch.device,
    prefix: str = "w.",
) -> None:
    """Load what `state_to_arrays` wrote into a freshly built module (strict: names must match)."""
    import torch

    state = {
        k[len(prefix) :]: torch.from_numpy(np.array(v))  # a copy: v may be a read-only memory map
        for k, v in arrays.items()
        if k.startswith(prefix)
    }
    module.load_state_dict(state, strict=True)
    module.to(device)


def check_memory(model: str, n_bytes: float, limit_gb: float, what: str) -> None:
    if n_bytes > limit_gb * 1e9:
        raise CapacityError(
            f"model '{model}' would need about {n_bytes / 1e9:.1f} GB to train ({what}), above "
            f"memory_limit_gb={limit_gb:g}; lower the dimensions or batch size, raise the limit, "
            "or use a model whose cost does not grow with the catalog in every step: ials or "
            "item-knn (sparse), or the pipeline"
        )


# ----------------------------------------------------------------------------- data helpers
def user_sequences(dataset: Dataset) -> list[np.ndarray]:
    """Each user's distinct items (int64) in time order (first interaction wins; ties and
    missing timestamps keep the log's order). Index u = user index u."""
    it = dataset.interactions
    ts = np.nan_to_num(it.timestamp, nan=-np.inf)
    order = np.lexsort((np.arange(len(it)), ts, it.user))
    u = it.user[order].astype(np.int64)
    i = it.item[order].astype(np.int64)
    # first occurrence of each (user, item) pair, in the sorted order
    frame = pd.DataFrame({"u": u, "i": i})
    keep = ~frame.duplicated(["u", "i"]).to_numpy()
    u, i = u[keep], i[keep]
    bounds = np.searchsorted(u, np.arange(dataset.n_users + 1))
    return [i[bounds[k] : bounds[k + 1]] for k in range(dataset.n_users)]


def sequences_to_csr(seqs: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(seqs) if len(seqs) else np.zeros(0, np.int64)
    m = sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(len(seqs), n_items)
    )
    m.sort_indices()
    return m


@dataclass(frozen=True, slots=True)
class ValidationCarve:
    """A validation split carved from the training data inside `fit`.

    train: per-user item sequences with the held-out items removed (same order as given);
    users: int64 user indices that hold items out; truth: per validation user, the held-out items.
    """

    train: list[np.ndarray]
    users: np.ndarray
    truth: list[np.ndarray]


def carve_validation(
    seqs: list[np.ndarray], share: float, seed: int, *, last: bool, max_users: int = 2000
) -> ValidationCarve | None:
    """Hold out 20% (at least one) of the items of `share` of the users with >= 5 items (at
    most `max_users` users): their last ones (`last=True`, for sequence models) or a random
    subset. None when nobody qualifies."""
    rng = np.random.default_rng((seed, 7))
    eligible = np.flatnonzero([len(s) >= 5 for s in seqs])
    if len(eligible) == 0:
        return None
    n_val = min(max_users, max(1, round(share * len(eligible))))
    users = np.sort(rng.choice(eligible, size=n_val, replace=False))
    train = list(seqs)
    truth = []
    for u in users:
        s = seqs[u]
        n_out = max(1, round(0.2 * len(s)))
        if last:
            keep = np.r_[np.ones(len(s) - n_out, bool), np.zeros(n_out, bool)]
        else:
            keep = np.ones(len(s), bool)
            keep[rng.choice(len(s), size=n_out, replace=False)] = False
        train[u] = s[keep]
        truth.append(s[~keep])
    return ValidationCarve(train, users.astype(np.int64), truth)


def ndcg_at_k(scores: np.ndarray, truth: list[np.ndarray], k: int = 10) -> float:
    """Mean binary NDCG@k of score rows (already -inf on excluded items) against held-out items;
    IDCG over min(|truth|, k)."""
    if len(truth) == 0:
        return 0.0
    idx, _ = top_k(scores, k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for row, rel in zip(idx, truth, strict=True):
        hits = np.isin(row, rel) & (row >= 0)
        idcg = disc[: min(len(rel), k)].sum()
        total += float(disc[hits].sum() / idcg) if idcg > 0 else 0.0
    return total / len(truth)


def fold_in_seen(model: Recommender, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Add the events' (known user, known item) pairs to `model.train_`; returns those pairs
    (user, item indices) in the events' order."""
    u = model.users_.indices(events["user"].astype(str).to_numpy())
    i = model.items_.indices(events["item"].astype(str).to_numpy())
    ok = (u >= 0) & (i >= 0)
    if ok.any():
        add = sp.csr_matrix(
            (np.ones(int(ok.sum()), np.float32), (u[ok], i[ok])), shape=model.train_.shape
        )
        merged = (model.train_ + add).tocsr()
        merged.data[:] = 1.0
        merged.sort_indices()
        model.train_ = merged
    return u[ok].astype(np.int64), i[ok].astype(np.int64)


# ----------------------------------------------------------------------------- the base class
DeepConfigT = TypeVar("DeepConfigT", bound=DeepConfig)


class TorchRecommender(Recommender[DeepConfigT]):
    """Skeleton of the torch models: seeded training with early stopping on a validation carve,
    batched scoring, weights saved as NumPy arrays and the module rebuilt on load.

    Subclasses implement `_build` (a fresh module), `_prepare` (training data from the
    per-user sequences), `_train_epoch`, `_score_users_with` (scores for some users given the
    training data in force), `_estimate_bytes`, and the scoring methods of the contract.
    `history_` records per epoch: mean training loss and (with early stopping) validation NDCG@10.
    """

    family = "deep"
    #: Carve the validation items from the end of each sequence (sequence models) or at random.
    _carve_last = False
    #: Called after every epoch with its `history_` record (epoch, loss, val_ndcg): set it to
    #: drive a progress bar; the library itself never prints.
    on_epoch: Callable[[Mapping[str, float]], None] | None = None

    # -------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _build(self) -> torch.nn.Module: ...

    def _prepare(self, seqs: list[np.ndarray]) -> Any:
        """Training data from per-user item sequences; default: a users x items CSR of the
        interacted items (order-aware models such as SASRec override this)."""
        return sequences_to_csr(seqs, len(self.items_))

    @abstractmethod
    def _train_epoch(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        data: Any,
        epoch: int,
        rng: np.random.Generator,
    ) -> float:
        """One pass over `data`; returns the mean loss."""

    @abstractmethod
    def _score_users_with(
        self, module: torch.nn.Module, data: Any, user_idx: np.ndarray
    ) -> np.ndarray:
        """float32 (len(user_idx), n_items) scores of known users, given training data `data`."""

    @abstractmethod
    def _estimate_bytes(self, dataset: Dataset) -> tuple[float, str]:
        """Estimated training memory and a few words on what dominates it."""

    def _validate(
        self, module: Any, data: Any, carve: ValidationCarve, seen: sp.csr_matrix
    ) -> float:
        """Mean NDCG@10 of the carve's users, scored in chunks (their carved items excluded)."""
        import torch

        n_items = len(self.items_)
        step = chunk_rows(len(carve.users), n_items)
        total = 0.0
        with torch.no_grad():
            for sl in batched(len(carve.users), step):
                scores = self._score_users_with(module, data, carve.users[sl])
                r, c = seen[sl].nonzero()
                scores[r, c] = -np.inf
                total += ndcg_at_k(scores, carve.truth[sl], 10) * (sl.stop - sl.start)
        return total / max(len(carve.users), 1)

    def _after_fit(self, dataset: Dataset, seqs: list[np.ndarray]) -> None:
        """Keep what scoring needs (sequences, ...) once the weights are final."""
        return None

    @abstractmethod
    def _item_vectors(self) -> torch.Tensor:
        """(n_items, d) item embeddings of the fitted module, for `_similar`."""

    def _similar(self, item_idx: int) -> np.ndarray:
        """Cosine similarity of every item to `item_idx` in the module's item-vector space."""
        import torch

        with torch.no_grad():
            v = self._item_vectors().cpu().numpy().astype(np.float64)
        norms = np.linalg.norm(v, axis=1) + 1e-12
        return (v @ v[item_idx] / (norms * norms[item_idx])).astype(np.float32)

    # -------------------------------------------------------------- fitting
    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        n_bytes, what = self._estimate_bytes(dataset)
        check_memory(self.name, n_bytes, cfg.memory_limit_gb, what)
        self.device_ = resolve_device(cfg.device)
        seqs = user_sequences(dataset)
        carve = (
            carve_validation(
                seqs, cfg.val_share, cfg.seed, last=self._carve_last, max_users=cfg.val_max_users
            )
            if cfg.early_stopping
            else None
        )
        self.history_: list[dict[str, float]] = []
        module, best_epoch = self._train(seqs, carve, cfg.epochs)
        if carve is not None and cfg.refit:
            # the carve found how long to train; now train that long on everything
            module, _ = self._train(seqs, None, best_epoch)
        module.eval()
        self.module_ = module
        self.best_epoch_ = best_epoch
        self._after_fit(dataset, seqs)

    def _train(
        self, seqs: list[np.ndarray], carve: ValidationCarve | None, epochs: int
    ) -> tuple[Any, int]:
        """Train a fresh module for up to `epochs` epochs; with a carve, stop early and return
        the best epoch's weights. Returns (module, epochs that count). Appends to `history_`."""
        import torch

        cfg = self.config
        data = self._prepare(carve.train if carve is not None else seqs)
        if carve is not None:
            seen = sequences_to_csr(carve.train, len(self.items_))[carve.users]
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        with seeded(cfg.seed, self.device_):
            module = self._build().to(self.device_)
            # with ema_decay, an exponential moving average of the weights (updated once per
            # epoch) is what gets validated and kept: it smooths out the noise of small data
            average = self._build().to(self.device_) if cfg.ema_decay > 0 else module
            optimizer = torch.optim.Adam(
                module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )
            stale = 0
            for epoch in range(epochs):
                rng = np.random.default_rng((cfg.seed, epoch))
                module.train()
                loss = self._train_epoch(module, optimizer, data, epoch, rng)
                if not math.isfinite(loss):
                    raise ConfigError(
                        f"model '{self.name}' diverged (loss {loss}) at epoch {epoch + 1}; "
                        f"lower lr (now {cfg.lr:g})"
                    )
                if average is not module:
                    _ema_step(average, module, 0.0 if epoch == 0 else cfg.ema_decay)
                record = {"epoch": float(epoch + 1), "loss": loss}
                if carve is not None:
                    average.eval()
                    ndcg = self._validate(average, data, carve, seen)
                    record["val_ndcg"] = ndcg
                    if best is None or ndcg > best[0]:
                        state = {k: v.detach().clone() for k, v in average.state_dict().items()}
                        best, stale = (ndcg, epoch + 1, state), 0
                    else:
                        stale += 1
                self.history_.append(record)
                if self.on_epoch is not None:
                    self.on_epoch(record)
                if carve is not None and stale >= cfg.patience:
                    break
            if best is not None:
                average.load_state_dict(best[2])
        return average, (best[1] if best is not None else epochs)

    # -------------------------------------------------------------- persistence
    def _weights_state(self) -> dict[str, np.ndarray]:
        return state_to_arrays(self.module_)

    def _restore_module(self, arrays: Mapping[str, Any]) -> None:
        self.device_ = resolve_device(self.config.device)
        module = self._build()
        load_arrays(module, arrays, self.device_)
        module.eval()
        self.module_ = module

    def _fit_meta(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch_, "history": self.history_}

    def _restore_fit_meta(self, meta: Mapping[str, Any]) -> None:
        self.best_epoch_ = int(meta.get("best_epoch", 0))
        self.history_ = list(meta.get("history", []))


def _ema_step(average: Any, module: Any, decay: float) -> None:
    import torch

    with torch.no_grad():
        for a, m in zip(average.state_dict().values(), module.state_dict().values(), strict=True):
            if a.dtype.is_floating_point:
                a.mul_(decay).add_(m, alpha=1.0 - decay)
            else:
                a.copy_(m)


def batched(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))


def chunk_rows(n_rows: int, n_cols: int, budget: int = 1 << 22) -> int:
    """Rows per chunk so that a (rows, n_cols) intermediate holds about `budget` entries."""
    return max(1, budget // max(n_cols, 1))
