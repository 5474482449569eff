"""ELMo's bidirectional language model (Peters et al., 2018; bilm-tf).

    chars (T, B, max_chars) -> TokenEncoder: char embedding -> CNN (max over time, ReLU)
                               -> highway x n -> linear projection to `proj`
        -> forward stack:  ProjectedLSTM layers over t = 0 .. T-1   -> output[t] predicts t+1
        -> backward stack: ProjectedLSTM layers over t = T-1 .. 0   -> output[t] predicts t-1
        -> one softmax (weight and bias) shared by both directions

Each stack is `layers` one-direction `lstmpack.rnn.ProjectedLSTM` layers (LSTM `hidden` wide,
projected to `proj`: targets of kind "lstm" with proj_size and "proj" for the passes), their own
modules `fwd_lstm.k` / `bwd_lstm.k` and `fwd_lstm.k.proj` / `bwd_lstm.k.proj`. Layer k >= 1 adds
its input (layer k-1's output) to its output when `residual` (bilm-tf's skip connection);
dropout acts on every layer's input and on the output the softmax reads. The two directions
share nothing but the token encoder and the softmax. The token encoder runs once per distinct
token of a batch (it holds no dropout, so that is the same function, for a fraction of the cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from elmo.chars import N_CHARS
from elmo.config import ELMoConfig
from elmo.softmax import full_softmax_nll, sampled_softmax_nll
from lstmpack.rnn import ProjectedLSTM

__all__ = ["DIRECTIONS", "BiLM", "BiLMOutput", "CharCNN", "Highway", "TokenEncoder", "build_model"]

DIRECTIONS = ("fwd", "bwd")
Hidden = tuple[torch.Tensor, torch.Tensor]
States = list[Hidden]  # one (h, c) per layer of a stack


class CharCNN(nn.Module):
    """Character embedding, one 1-D convolution per (width, channels) filter, max over the
    positions, then ReLU (bilm-tf's order); (N, max_chars) ids -> (N, sum of channels)."""

    def __init__(self, n_chars: int, char_emb: int, filters: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_chars, char_emb)
        self.convs = nn.ModuleList(nn.Conv1d(char_emb, c, w) for w, c in filters)
        self.out_dim = sum(c for _, c in filters)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        x = self.embedding(chars).transpose(1, 2)  # (N, char_emb, max_chars)
        pooled = [conv(x).amax(dim=2) for conv in self.convs]
        return F.relu(torch.cat(pooled, dim=1))


class Highway(nn.Module):
    """Highway layers (Srivastava et al., 2015) as bilm-tf writes them:
    y = g * relu(W_t x + b_t) + (1 - g) * x, g = sigmoid(W_g x + b_g), b_g starting at -2 so
    that each layer starts close to carrying its input through."""

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.transform = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))
        self.gate = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))
        with torch.no_grad():
            for gate in self.gate:
                gate.bias.fill_(-2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for transform, gate in zip(self.transform, self.gate):
            g = torch.sigmoid(gate(x))
            x = g * F.relu(transform(x)) + (1 - g) * x
        return x


class TokenEncoder(nn.Module):
    """(..., max_chars) character ids -> (..., proj) token representations: CharCNN, highway,
    a linear projection. Computed once per distinct token, then gathered."""

    def __init__(self, cfg: ELMoConfig) -> None:
        super().__init__()
        self.char_cnn = CharCNN(N_CHARS, cfg.char_emb, cfg.filters)
        self.highway = Highway(self.char_cnn.out_dim, cfg.highway)
        self.projection = nn.Linear(self.char_cnn.out_dim, cfg.proj)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        flat = chars.reshape(-1, chars.size(-1))
        unique, inverse = torch.unique(flat, dim=0, return_inverse=True)
        emb = self.projection(self.highway(self.char_cnn(unique)))
        return emb[inverse].view(*chars.shape[:-1], emb.size(-1))


@dataclass
class BiLMOutput:
    """Both directions' top-layer outputs (T, B, proj), in time order, and their final states:
    fwd[t] has read tokens 0..t and predicts t+1; bwd[t] has read T-1..t and predicts t-1."""

    fwd: torch.Tensor
    bwd: torch.Tensor
    states: dict[str, States]


class BiLM(nn.Module):
    """ELMo's biLM; see the module docstring."""

    def __init__(self, cfg: ELMoConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = int(vocab_size)
        self.encoder = TokenEncoder(cfg)
        for d in DIRECTIONS:
            stack = nn.ModuleList(
                ProjectedLSTM(cfg.proj, cfg.hidden, cfg.proj) for _ in range(cfg.layers)
            )
            self.add_module(f"{d}_lstm", stack)
        self.softmax = nn.Linear(cfg.proj, self.vocab_size)  # both directions score through it

    def stack(self, direction: str) -> nn.ModuleList:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        return getattr(self, f"{direction}_lstm")

    def run(
        self, direction: str, x: torch.Tensor, states: States | None = None
    ) -> tuple[torch.Tensor, States]:
        """One direction's stack over token representations x (T, B, proj) in its own reading
        order (the backward stack's input already reversed); returns its top output, dropout
        applied, and its final states."""
        p = self.cfg.dropout if self.training else 0.0
        finals: States = []
        h = x
        for k, layer in enumerate(self.stack(direction)):
            out, final = layer(
                F.dropout(h, p, self.training), None if states is None else states[k]
            )
            if self.cfg.residual and k > 0:
                out = out + h
            finals.append(final)
            h = out
        return F.dropout(h, p, self.training), finals

    def forward(self, chars: torch.Tensor, states: dict[str, States] | None = None) -> BiLMOutput:
        """Both directions over one window of character ids (T, B, max_chars): the forward
        stack left to right, the backward stack right to left (its outputs put back in time
        order). `states` continue each direction from a previous call."""
        x = self.encoder(chars)
        states = states or {}
        fwd, fwd_states = self.run("fwd", x, states.get("fwd"))
        bwd, bwd_states = self.run("bwd", x.flip(0), states.get("bwd"))
        return BiLMOutput(fwd, bwd.flip(0), {"fwd": fwd_states, "bwd": bwd_states})

    def logits(self, out: torch.Tensor) -> torch.Tensor:
        """Full-softmax logits (..., vocab) of either direction's outputs."""
        return self.softmax(out)

    def nll(
        self,
        out: torch.Tensor,
        targets: torch.Tensor,
        *,
        reduction: str = "mean",
        rng: np.random.Generator | None = None,
    ) -> torch.Tensor:
        """The loss of outputs (..., proj) against targets (...): the full softmax, or the sampled
        one (cfg.sampled_softmax candidates drawn from `rng`) when training with one."""
        n = self.cfg.sampled_softmax
        if self.training and n and rng is not None:
            if reduction != "mean":
                raise ValueError("the sampled softmax gives the mean loss only")
            n = min(n, self.vocab_size)
            return sampled_softmax_nll(out, self.softmax.weight, self.softmax.bias, targets, n, rng)
        return full_softmax_nll(out, self.softmax.weight, self.softmax.bias, targets, reduction)


def detach_states(states: States) -> States:
    return [(h.detach(), c.detach()) for h, c in states]


def build_model(cfg: ELMoConfig, vocab_size: int) -> BiLM:
    """A fresh biLM, seeded by cfg.seed (the same weights for the same config)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return BiLM(cfg, vocab_size)
