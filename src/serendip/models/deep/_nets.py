"""The torch modules of the deep family. Imported only inside methods (this module imports torch)."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NeuMFNet", "RecVAENet", "SASRecNet", "VAENet"]


class NeuMFNet(nn.Module):
    """NeuMF (He et al. 2017): a GMF branch (p_u * q_i) and an MLP branch over
    concat(p'_u, q'_i), fused by one linear layer into a logit."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        gmf_dim: int,
        mlp_dims: tuple[int, ...],
        dropout: float,
    ) -> None:
        super().__init__()
        half = mlp_dims[0] // 2
        self.gmf_user = nn.Embedding(n_users, gmf_dim)
        self.gmf_item = nn.Embedding(n_items, gmf_dim)
        self.mlp_user = nn.Embedding(n_users, half)
        self.mlp_item = nn.Embedding(n_items, half)
        layers: list[nn.Module] = []
        for d_in, d_out in zip((2 * half, *mlp_dims[1:]), mlp_dims[1:], strict=False):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(gmf_dim + (mlp_dims[-1] if len(mlp_dims) > 1 else 2 * half), 1)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, std=0.01)

    def forward_vectors(
        self, gmf_u: torch.Tensor, mlp_u: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:
        """Logits (n,) of n (user vector, item) pairs; user vectors (n, d) given explicitly."""
        gmf = gmf_u * self.gmf_item(items)
        mlp = self.mlp(torch.cat([mlp_u, self.mlp_item(items)], dim=-1))
        return self.out(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.forward_vectors(self.gmf_user(users), self.mlp_user(users), items)

    def score_vectors(self, gmf_u: torch.Tensor, mlp_u: torch.Tensor, n_items: int) -> torch.Tensor:
        """Logits (b, n_items) of b user vectors against every item."""
        b = gmf_u.shape[0]
        items = torch.arange(n_items, device=gmf_u.device).repeat(b)
        gu = gmf_u.repeat_interleave(n_items, dim=0)
        mu = mlp_u.repeat_interleave(n_items, dim=0)
        return self.forward_vectors(gu, mu, items).view(b, n_items)

    def item_vectors(self) -> torch.Tensor:
        return torch.cat([self.gmf_item.weight, self.mlp_item.weight], dim=1)


class VAENet(nn.Module):
    """Mult-VAE (Liang et al. 2018): L2-normalised bag of items -> dropout -> tanh MLP encoder ->
    Gaussian latent -> tanh MLP decoder -> logits over the catalog (softmax = multinomial)."""

    def __init__(self, n_items: int, hidden: tuple[int, ...], latent: int, dropout: float) -> None:
        super().__init__()
        dims = (n_items, *hidden)
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.to_latent = nn.Linear(dims[-1], 2 * latent)
        ddims = (latent, *reversed(hidden))
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(ddims))
        self.to_items = nn.Linear(ddims[-1], n_items)
        self.drop = nn.Dropout(dropout)
        self.latent = latent
        for lin in [*self.encoder, self.to_latent, *self.decoder, self.to_items]:
            nn.init.xavier_normal_(lin.weight)
            nn.init.normal_(lin.bias, std=0.001)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.drop(F.normalize(x, dim=1))
        for lin in self.encoder:
            h = torch.tanh(lin(h))
        out = self.to_latent(h)
        return out[:, : self.latent], out[:, self.latent :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for lin in self.decoder:
            h = torch.tanh(lin(h))
        return self.to_items(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        # sample z while training; score with the posterior mean
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


class _RecVAEEncoder(nn.Module):
    """RecVAE's encoder: L2-normalised input -> dropout -> `layers` swish + LayerNorm layers,
    each fed the sum of all earlier layers' outputs (dense skip connections) -> mu, logvar."""

    def __init__(self, n_items: int, hidden: int, latent: int, layers: int) -> None:
        super().__init__()
        self.fc = nn.ModuleList(
            nn.Linear(n_items if j == 0 else hidden, hidden) for j in range(layers)
        )
        self.ln = nn.ModuleList(nn.LayerNorm(hidden, eps=0.1) for _ in range(layers))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.dropout(F.normalize(x, dim=1), p=dropout, training=self.training)
        skip: torch.Tensor | None = None
        for fc, ln in zip(self.fc, self.ln, strict=True):
            pre = fc(h) if skip is None else fc(h) + skip
            h = ln(F.silu(pre))
            skip = h if skip is None else skip + h
        return self.mu(h), self.logvar(h)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / logvar.exp())


class RecVAENet(nn.Module):
    """RecVAE (Shenbin et al. 2020): a deeper encoder (`_RecVAEEncoder`), a linear decoder to
    the catalog's logits, and the composite prior -- a mixture of N(0, 1), a wide N(0, e^10) and
    the posterior of a frozen copy of the encoder from the previous training epoch
    (`prior_encoder`), which keeps the encoder from drifting between alternating updates."""

    #: mixture weights of the composite prior: standard, previous posterior, wide
    PRIOR_MIX = (3 / 20, 15 / 20, 2 / 20)

    def __init__(
        self, n_items: int, hidden: int, latent: int, dropout: float, layers: int = 5
    ) -> None:
        super().__init__()
        self.encoder = _RecVAEEncoder(n_items, hidden, latent, layers)
        self.prior_encoder = _RecVAEEncoder(n_items, hidden, latent, layers)
        self.prior_encoder.requires_grad_(False)
        self.to_items = nn.Linear(latent, n_items)
        self.dropout = dropout
        self.sync_prior()

    def sync_prior(self) -> None:
        self.prior_encoder.load_state_dict(self.encoder.state_dict())

    def log_prior(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(z | x) of the composite prior, per latent dimension."""
        self.prior_encoder.eval()
        mu_old, logvar_old = self.prior_encoder(x, 0.0)
        zero = torch.zeros_like(z)
        parts = [
            _log_normal(z, zero, zero) + math.log(self.PRIOR_MIX[0]),
            _log_normal(z, mu_old, logvar_old) + math.log(self.PRIOR_MIX[1]),
            _log_normal(z, zero, zero + 10.0) + math.log(self.PRIOR_MIX[2]),
        ]
        return torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)

    def kl(
        self, x: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
    ) -> torch.Tensor:
        """Per-user single-sample estimate of KL(q(z | x) || p(z | x)) for z drawn from q."""
        return (_log_normal(z, mu, logvar) - self.log_prior(x, z)).sum(dim=1)

    def forward(
        self, x: torch.Tensor, dropout: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, logvar); z is sampled while training, the posterior mean otherwise;
        `dropout` overrides the input dropout (the decoder's updates train without it)."""
        mu, logvar = self.encoder(x, self.dropout if dropout is None else dropout)
        z = self.sample(mu, logvar) if self.training else mu
        return self.to_items(z), mu, logvar

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z ~ N(mu, exp(logvar)), reparameterised so gradients reach mu and logvar."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


class _Block(nn.Module):
    """Pre-LayerNorm transformer block with causal self-attention (weights returned on demand)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, want_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // h)
        att = att.masked_fill(~mask[:, None, :, :], float("-inf")).softmax(dim=-1)
        out = (self.drop(att) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.drop(self.proj(out))
        x = x + self.drop(self.ff(self.ln2(x)))
        return x, (att.mean(dim=1) if want_weights else None)


class SASRecNet(nn.Module):
    """SASRec (Kang & McAuley 2018): item + learned position embeddings, causal transformer
    blocks, output scores = hidden state . item embedding (tied). Item index j is token j + 1;
    token 0 pads sequences on the left."""

    def __init__(
        self, n_items: int, dim: int, blocks: int, heads: int, max_len: int, dropout: float
    ) -> None:
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(blocks))
        self.ln = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.max_len = max_len
        nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def encode(
        self, tokens: torch.Tensor, want_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hidden states (b, L, dim) of left-padded token sequences (b, L), L <= max_len, and
        with `want_weights` the last block's attention (b, L, L), averaged over heads."""
        n = tokens.shape[1]
        real = tokens > 0
        pos = torch.arange(self.max_len - n, self.max_len, device=tokens.device)
        x = self.item_emb(tokens) * math.sqrt(self.item_emb.embedding_dim) + self.pos_emb(pos)
        x = self.drop(x) * real[..., None]
        causal = torch.ones(n, n, dtype=torch.bool, device=tokens.device).tril()
        eye = torch.eye(n, dtype=torch.bool, device=tokens.device)
        # a query sees earlier real tokens; itself always, so padded rows never go all -inf
        mask = (causal[None] & real[:, None, :]) | eye[None]
        weights = None
        for j, block in enumerate(self.blocks):
            last = j == len(self.blocks) - 1
            x, w = block(x, mask, want_weights and last)
            x = x * real[..., None]
            weights = w if w is not None else weights
        return self.ln(x), weights

    def item_weights(self) -> torch.Tensor:
        """Output embeddings (n_items, dim) of the real items."""
        return self.item_emb.weight[1:]
