"""Deep models (torch): training behaviour, sequence order, cold start by encoding, persistence."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, ConfigError
from serendip.models import Recommender
from serendip.models.deep import MultVAE, NeuMF, RecVAE, SASRec
from tests.conftest import make_toy_platform

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # tiny models: one thread avoids oversubscribing the 2 shared CI cores
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@cache
def _toy() -> Dataset:
    return make_toy_platform(seed=11)


def _ring(n_users: int = 120, n_items: int = 30, seed: int = 0) -> Dataset:
    """Users walk a ring of items: item i is always followed by item i + 1 (mod n_items)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start, n = int(rng.integers(0, n_items)), int(rng.integers(6, 12))
        rows += [(f"u{u}", f"i{(start + t) % n_items:02d}", 1000.0 * u + t) for t in range(n)]
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))


@cache
def _ring_sasrec(sampled: bool) -> SASRec:
    params = {
        "dim": 32,
        "blocks": 1,
        "max_len": 12,
        "epochs": 20,
        "early_stopping": False,
        "lr": 5e-3,
        "dropout": 0.0,
        "batch_size": 64,
    }
    if sampled:
        params |= {"full_softmax_max_items": 10, "n_negatives": 8}
    return SASRec(params).fit(_ring())


def _topic_share(model: Recommender, ds: Dataset, k: int = 10) -> float:
    """Share of recommended items in the user's most frequent training category."""
    cats = np.asarray(ds.item_meta.category)
    seen = ds.seen()
    users = list(ds.users.ids)
    recs = model.recommend(users, k)
    shares = []
    for r in range(len(users)):
        top = pd.Series(cats[seen[r].indices]).mode()[0]
        shares.append(float((cats[recs.items[r]] == top).mean()))
    return float(np.mean(shares))


# ----------------------------------------------------------------------------- Mult-VAE
def test_multvae_loss_decreases_and_learns_topics() -> None:
    ds = _toy()
    model = MultVAE(
        hidden=(64,), latent=16, epochs=40, batch_size=16, lr=3e-3, early_stopping=False
    ).fit(ds)
    losses = [h["loss"] for h in model.history_]
    assert len(losses) == 40 and "val_ndcg" not in model.history_[0]
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    # four topics: chance is about 0.25 of a list in the user's main category
    assert _topic_share(model, ds) > 0.5


def test_multvae_cold_context_is_encoded_like_a_known_history() -> None:
    ds = _toy()
    model = MultVAE(MultVAE.quick_params).fit(ds)
    u = 7
    hist = ds.seen()[u].indices
    np.testing.assert_allclose(
        model._score_cold(hist), model._score_warm(np.array([u]))[0], rtol=1e-5, atol=1e-5
    )


def test_multvae_update_reencodes_the_new_history() -> None:
    ds = _toy()
    model = MultVAE(MultVAE.quick_params).fit(ds)
    u = str(ds.users.ids[4])
    before = model.score(u, ds.items.ids)
    new = [str(i) for i in model.recommend([u], 3).item_ids(0)]
    model.update(pd.DataFrame({"user": [u] * 3, "item": new}))
    after = model.score(u, ds.items.ids)
    assert not np.allclose(before, after), "new events change the encoding"
    assert not set(new) & set(model.recommend([u], 10).item_ids(0))


def test_multvae_explanation_cites_history_with_positive_attribution() -> None:
    ds = _toy()
    model = MultVAE(MultVAE.quick_params).fit(ds)
    u = str(ds.users.ids[2])
    item = model.recommend([u], 1).item_ids(0)[0]
    exp = model.explain(u, item)
    hist = set(ds.items.lookup(ds.seen()[2].indices))
    assert exp.evidence and all(e.kind == "item" and e.id in hist for e in exp.evidence)
    assert all(e.weight > 0 for e in exp.evidence)
    assert [e.weight for e in exp.evidence] == sorted(
        (e.weight for e in exp.evidence), reverse=True
    )


# ----------------------------------------------------------------------------- RecVAE
def test_recvae_learns_topics_and_steps_encoder_and_decoder_in_turn() -> None:
    ds = _toy()
    model = RecVAE(
        hidden=64, latent=16, layers=2, epochs=30, batch_size=16, lr=3e-3, early_stopping=False
    ).fit(ds)
    losses = [h["loss"] for h in model.history_]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    assert _topic_share(model, ds) > 0.5
    # the composite prior's encoder is the encoder of the last epoch, frozen
    net = model.module_
    for k, v in net.encoder.state_dict().items():
        assert torch.equal(v, net.prior_encoder.state_dict()[k]), k
    assert not any(p.requires_grad for p in net.prior_encoder.parameters())


@pytest.mark.parametrize("part", ["decoder", "encoder"])
def test_recvae_each_pass_steps_only_its_own_half(part: str) -> None:
    ds = _toy()
    model = RecVAE(RecVAE.quick_params)
    model.fit(ds)
    net = model.module_
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    stepped = net.to_items if part == "decoder" else net.encoder
    model._pass(net, optimizer, ds.seen(), np.random.default_rng(0),
                update=list(stepped.parameters()), dropout=0.0)  # fmt: skip
    after = net.state_dict()
    mine, other = ("to_items.", "encoder.") if part == "decoder" else ("encoder.", "to_items.")
    assert all(not torch.equal(before[k], after[k]) for k in before if k.startswith(mine))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(other))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("prior_"))


def test_recvae_kl_term_counts_with_gamma() -> None:
    """gamma = 0 drops the KL term, so the training loss is the reconstruction alone (lower)."""
    ds = _toy()
    plain = RecVAE({**RecVAE.quick_params, "gamma": 0.0, "early_stopping": False}).fit(ds)
    kl = RecVAE({**RecVAE.quick_params, "gamma": 0.5, "early_stopping": False}).fit(ds)
    assert kl.history_[0]["loss"] > plain.history_[0]["loss"]


def test_recvae_kl_weight_is_gamma_times_the_history_length() -> None:
    ds = _toy()
    model = RecVAE({**RecVAE.quick_params, "gamma": 0.5}).fit(ds)
    net = model.module_
    x = torch.from_numpy(ds.seen()[:12].toarray())
    lengths = x.sum(1)
    assert len(set(lengths.tolist())) > 1, "users with different history lengths"
    with torch.no_grad():
        torch.manual_seed(0)
        full = model._loss(net, x, 0.0)
        torch.manual_seed(0)
        recon = RecVAE({**RecVAE.quick_params, "gamma": 0.0})._loss(net, x, 0.0)
        torch.manual_seed(0)
        mu, logvar = net.encoder(x, 0.0)
        z = net.sample(mu, logvar)
        kl = net.kl(x, z, mu, logvar)
    np.testing.assert_allclose(full - recon, 0.5 * lengths * kl, rtol=1e-4, atol=1e-4)


def test_recvae_cold_context_is_encoded_like_a_known_history() -> None:
    ds = _toy()
    model = RecVAE(RecVAE.quick_params).fit(ds)
    hist = ds.seen()[7].indices
    np.testing.assert_allclose(
        model._score_cold(hist), model._score_warm(np.array([7]))[0], rtol=1e-5, atol=1e-5
    )


# ----------------------------------------------------------------------------- NeuMF
def test_neumf_learns_topics_and_folds_in_cold_users() -> None:
    ds = _toy()
    model = NeuMF(
        gmf_dim=16, mlp_dims=(32, 16), epochs=15, batch_size=128, lr=5e-3, early_stopping=False
    ).fit(ds)
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < 0.8 * losses[0]
    assert _topic_share(model, ds) > 0.45
    cats = np.asarray(ds.item_meta.category)
    context = [str(i) for i in ds.items.ids[cats == "cat1"][:8]]
    recs = model.recommend(["newcomer"], 10, context={"newcomer": context})
    assert (cats[recs.items[0]] == "cat1").mean() > 0.5, "fold-in follows the context's topic"


# ----------------------------------------------------------------------------- SASRec
def test_sasrec_predicts_the_next_item_of_the_sequence() -> None:
    ds = _ring()
    model = _ring_sasrec(sampled=False)
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < 0.5 * losses[0]
    users = list(ds.users.ids)
    recs = model.recommend(users, 1)
    ids = ds.items.ids
    expected = [f"i{(int(ids[s[-1]][1:]) + 1) % 30:02d}" for s in model.seqs_]
    accuracy = np.mean([recs.item_ids(r)[0] == expected[r] for r in range(len(users))])
    assert accuracy > 0.9


def test_sasrec_reads_the_context_in_order() -> None:
    model = _ring_sasrec(sampled=False)

    def next_of(items: list[int]) -> str:
        ctx = {"x": [f"i{i:02d}" for i in items]}
        return model.recommend(["x"], 1, context=ctx).item_ids(0)[0]

    assert next_of([3, 4, 5]) == "i06"
    assert next_of([28, 29]) == "i00"
    # the same two items in the other order lead elsewhere: order matters, not just the set
    assert next_of([3, 10]) == "i11"
    assert next_of([10, 3]) == "i04"


def test_sasrec_sampled_softmax_for_large_catalogs_also_learns() -> None:
    model = _ring_sasrec(sampled=True)
    ctx = {"x": ["i12", "i13", "i14"]}
    assert model.recommend(["x"], 1, context=ctx).item_ids(0)[0] == "i15"


def test_sasrec_update_appends_to_the_sequence_and_moves_the_prediction() -> None:
    ds = _ring()
    model = SASRec(_ring_sasrec(sampled=False).config).fit(ds)
    u = str(ds.users.ids[0])
    last = int(ds.items.ids[model.seqs_[0][-1]][1:])
    nxt = f"i{(last + 1) % 30:02d}"
    model.update(pd.DataFrame({"user": [u], "item": [nxt], "timestamp": [1e9]}))
    assert ds.items.ids[model.seqs_[0][-1]] == nxt
    assert model.recommend([u], 1).item_ids(0)[0] == f"i{(last + 2) % 30:02d}"


def test_sasrec_explanation_cites_the_attended_sequence_items() -> None:
    ds = _ring()
    model = _ring_sasrec(sampled=False)
    u = str(ds.users.ids[5])
    item = model.recommend([u], 1).item_ids(0)[0]
    exp = model.explain(u, item)
    seq = set(ds.items.lookup(model.seqs_[5]))
    assert exp.evidence and all(e.kind == "item" and e.id in seq for e in exp.evidence)
    assert sum(e.weight for e in exp.evidence) <= 1.0 + 1e-6  # attention weights


# ----------------------------------------------------------------------------- shared machinery
def test_early_stopping_keeps_the_best_epoch() -> None:
    ds = _toy()
    model = MultVAE(hidden=(32,), latent=8, epochs=60, batch_size=16, patience=3).fit(ds)
    vals = [h["val_ndcg"] for h in model.history_]
    best = int(np.argmax(vals))  # first best wins
    assert model.best_epoch_ == best + 1
    assert len(vals) == 60 or len(vals) == best + 1 + 3, "stops `patience` epochs after the best"


def test_refit_trains_again_on_everything_for_the_best_epoch_count() -> None:
    ds = _toy()
    model = MultVAE({**MultVAE.quick_params, "epochs": 6, "patience": 2, "refit": True})
    seen: list[float] = []
    model.on_epoch = lambda record: seen.append(record["epoch"])
    model.fit(ds)
    carve = [h for h in model.history_ if "val_ndcg" in h]
    refit = [h for h in model.history_ if "val_ndcg" not in h]
    assert len(refit) == model.best_epoch_ >= 1
    assert len(carve) >= model.best_epoch_
    assert seen == [h["epoch"] for h in model.history_], "on_epoch sees every record"


def test_training_is_reproducible_and_leaves_global_rng_alone() -> None:
    ds = _toy()
    state = torch.random.get_rng_state()
    a = NeuMF(NeuMF.quick_params).fit(ds)
    b = NeuMF(NeuMF.quick_params).fit(ds)
    assert torch.equal(state, torch.random.get_rng_state())
    for k, v in a.module_.state_dict().items():
        assert torch.equal(v, b.module_.state_dict()[k]), k
    c = NeuMF({**NeuMF.quick_params, "seed": 1}).fit(ds)
    assert not torch.equal(a.module_.gmf_item.weight, c.module_.gmf_item.weight)


def test_capacity_is_checked_before_training() -> None:
    with pytest.raises(CapacityError, match=r"memory_limit_gb.*use .*ials or item-knn"):
        MultVAE(hidden=(600,), memory_limit_gb=1e-4).fit(_toy())


def test_bad_configs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="mlp_dims"):
        NeuMF(mlp_dims=(15, 8))
    with pytest.raises(ConfigError, match="multiple of heads"):
        SASRec(dim=10, heads=3, epochs=1).fit(_toy())
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            MultVAE({**MultVAE.quick_params, "device": "cuda"}).fit(_toy())


@pytest.mark.parametrize("cls", [NeuMF, MultVAE, RecVAE, SASRec])
def test_weights_are_saved_as_plain_arrays(cls: type[Recommender], tmp_path: Path) -> None:
    model = cls(cls.quick_params).fit(_toy())
    model.save(tmp_path / "m")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert any(f.startswith("w.") and f.endswith(".npy") for f in files)
    loaded = Recommender.load(tmp_path / "m")
    users = [str(u) for u in _toy().users.ids[:5]]
    np.testing.assert_allclose(
        loaded.score(users[0], _toy().items.ids), model.score(users[0], _toy().items.ids), rtol=1e-6
    )


@pytest.mark.gpu
def test_fits_and_scores_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ds = _toy()
    for cls in (NeuMF, MultVAE, RecVAE, SASRec):
        model = cls({**cls.quick_params, "device": "cuda"}).fit(ds)
        assert model.device_.type == "cuda"
        cpu = cls({**cls.quick_params, "device": "cpu"}).fit(ds)
        u = str(ds.users.ids[0])
        assert len(model.recommend([u], 5).item_ids(0)) == 5
        assert np.isfinite(model.score(u, ds.items.ids)).all()
        assert cpu.recommend([u], 5).items.shape == (1, 5)
