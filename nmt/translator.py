"""The spiking sequence-to-sequence translator (SpikingParrot's architecture family).

Encoder: embedding -> DyT -> a bidirectional pair of SpikingLayers (the backward one reads the
reversed sequence and its outputs are flipped back) concatenated to 2H -> a stack of L
SpikingLayers, each exporting its analog (h, c) sequence.

Decoder: embedding -> DyT -> L SpikingLayers; layer l starts from encoder layer l's final state
and attends (Luong "general") with its own h over encoder layer l's h sequence; the context goes
through Dropout(DyT(.)); [y ; ctx] (2H) feeds layer l + 1, and the last [y ; ctx] the logits.

`faithful=False` (ours) fixes what the original gets wrong with padding, in three places:
attention ignores padded source positions; the backward encoder direction reverses each
sentence within its own length (the original flips the padded batch, so it reads the pads
first); every encoder layer's state stops at the sentence's last token, so the decoder starts
from the state at the last real token (the original runs through the pads and hands over the
state after the last pad). With `faithful=True` all three are reproduced, and so is snnTorch
0.9.4's SLSTM zeroing h and c before every step in cells whose input size differs from the
hidden size (the cells' `zero_state_quirk`): in the original that makes the first encoder stack
layer and decoder layers 2..L memoryless.

Other departures from the original, outside the model (see nmt/data.py, nmt/decode.py,
nmt/buckets.py): its collate pads every batch to its bucket's upper edge + 1 (so every sentence
ends in at least one pad, which the unmasked model then reads) and validates on batches padded to
128 tokens; its data order inside a bucket shard never changes between epochs and epoch 0 runs
the buckets sorted by length; its beam search divides logits by a repetition penalty (which
raises negative logits) and mixes length-normalised and raw scores; its greedy decoder runs every
sentence for max_length steps. We pad to the batch's longest sentence, reshuffle every epoch,
use the GNMT length penalty and stop at EOS; `faithful` does not reproduce these.

With full teacher forcing every decoder layer runs over the whole target sequence before the
next one (the recurrence of layer l depends only on its own state and on layer l - 1's outputs),
so attention is one batched product per layer; a step with scheduled sampling falls back to the
step-by-step decoder, which is also the one used for decoding. Both give the same logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nmt.dyt import DyT
from nmt.layers import KINDS, LuongAttention, SpikingLayer
from nmt.tokenize import PAD

__all__ = ["EncoderOutput", "Translator"]

State = tuple[torch.Tensor, torch.Tensor]


@dataclass
class EncoderOutput:
    keys: list[torch.Tensor]  # per stack layer, encoder h [B, S, H]
    final: list[State]  # per stack layer, the state handed to the decoder, each [B, H]
    mask: torch.Tensor | None  # [B, S] True at real tokens; None in faithful mode
    src_mask: torch.Tensor  # [B, S] True at real tokens (for statistics, always given)

    def index_select(self, index: torch.Tensor) -> EncoderOutput:
        """The encoder output of the batch rows `index` (beam search expands and reorders)."""
        return EncoderOutput(
            [k.index_select(0, index) for k in self.keys],
            [(h.index_select(0, index), c.index_select(0, index)) for h, c in self.final],
            None if self.mask is None else self.mask.index_select(0, index),
            self.src_mask.index_select(0, index),
        )


def _reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [T, B, d] with each sequence's first lengths[b] steps reversed (pads stay put)."""
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device).unsqueeze(1)
    index = torch.where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t, t)
    return x.gather(0, index.unsqueeze(2).expand(-1, -1, x.shape[2]))


@dataclass(frozen=True)
class LayerOptions:
    """What the encoder and the decoder build their SpikingLayers from (the Translator's
    arguments, see there)."""

    embed: int
    hidden: int
    layers: int
    dropout: float
    kind: str
    faithful: bool
    surrogate: str | None
    threshold: float = 1.0

    def cell_kwargs(self) -> dict:
        """The cell options SpikingLayer passes on, for the cells that take them."""
        if self.kind == "output":
            kw = {"zero_state_quirk": self.faithful, "threshold": self.threshold}
            if self.surrogate:
                kw["surrogate"] = self.surrogate
            return kw
        if self.kind == "gate":
            return {"surrogate": self.surrogate} if self.surrogate else {}
        return {}


class _Side(nn.Module):
    """The part the encoder and the decoder share: token embedding -> DyT."""

    def __init__(self, vocab: int, opts: LayerOptions) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, opts.embed, padding_idx=PAD)
        nn.init.xavier_uniform_(self.embedding.weight)
        self.norm = DyT(opts.embed)


class Encoder(_Side):
    def __init__(self, vocab: int, opts: LayerOptions, stack_memory: bool = True) -> None:
        super().__init__(vocab, opts)
        kw = opts.cell_kwargs()
        hidden, dropout, kind = opts.hidden, opts.dropout, opts.kind
        self.faithful = opts.faithful
        self.forward_layer = SpikingLayer(opts.embed, hidden, dropout, kind, **kw)
        self.backward_layer = SpikingLayer(opts.embed, hidden, dropout, kind, **kw)
        # The last stack layer's y would feed nothing (the decoder reads its h as attention keys
        # and its final (h, c) as initial state), so it has no W_l and mixer.
        self.layers = nn.ModuleList(
            SpikingLayer(
                2 * hidden if i == 0 else hidden,
                hidden,
                dropout,
                kind,
                output=i < opts.layers - 1,
                **kw,
            )
            for i in range(opts.layers)
        )
        for layer in self.layers:
            layer.memoryless = not stack_memory

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> EncoderOutput:
        """src [B, S] token ids (right-padded), src_len [B] -> EncoderOutput."""
        steps = src.shape[1]
        src_mask = torch.arange(steps, device=src.device).unsqueeze(0) < src_len.unsqueeze(1)
        x = self.norm(self.embedding(src)).transpose(0, 1)  # [S, B, E]
        stats = src_mask.t()
        if self.faithful:
            mask = None
            fwd, _, _, _ = self.forward_layer.forward_seq(x, stats_mask=stats)
            bwd, _, _, _ = self.backward_layer.forward_seq(x.flip(0), stats_mask=stats.flip(0))
            bwd = bwd.flip(0)
        else:
            mask = stats
            fwd, _, _, _ = self.forward_layer.forward_seq(x, mask=mask)
            rev_mask = _reverse_within(mask.unsqueeze(2), src_len).squeeze(2)
            bwd, _, _, _ = self.backward_layer.forward_seq(
                _reverse_within(x, src_len), mask=rev_mask
            )
            bwd = _reverse_within(bwd, src_len)
        y = torch.cat((fwd, bwd), dim=2)
        keys, final = [], []
        for layer in self.layers:
            y, h, _, state = layer.forward_seq(y, mask=mask, stats_mask=stats)
            keys.append(h.transpose(0, 1))
            final.append(state)
        return EncoderOutput(keys, final, None if self.faithful else src_mask, src_mask)


class Decoder(_Side):
    def __init__(self, vocab: int, opts: LayerOptions) -> None:
        super().__init__(vocab, opts)
        kw = opts.cell_kwargs()
        hidden = opts.hidden
        self.vocab = vocab
        self.layers = nn.ModuleList(
            SpikingLayer(
                opts.embed if i == 0 else 2 * hidden, hidden, opts.dropout, opts.kind, **kw
            )
            for i in range(opts.layers)
        )
        self.attention = nn.ModuleList(
            LuongAttention(hidden, opts.dropout) for _ in range(opts.layers)
        )
        self.fc = nn.Linear(2 * hidden, vocab)

    def forward_teacher(self, tgt_in: torch.Tensor, enc: EncoderOutput) -> torch.Tensor:
        """Fully teacher-forced logits [B, T, V], layer by layer over the whole sequence."""
        stats = tgt_in != PAD
        x = self.norm(self.embedding(tgt_in)).transpose(0, 1)  # [T, B, E]
        for layer, attn, keys, state in zip(self.layers, self.attention, enc.keys, enc.final):
            y, h, _, _ = layer.forward_seq(x, state=state, stats_mask=stats.t())
            ctx = attn(h.transpose(0, 1), keys, enc.mask, stats_mask=stats)  # [B, T, H]
            x = torch.cat((y, ctx.transpose(0, 1)), dim=2)
        return self.fc(x).transpose(0, 1)

    def init_state(self, enc: EncoderOutput) -> list[State]:
        return list(enc.final)

    def step_features(
        self, tokens: torch.Tensor, states: list[State], enc: EncoderOutput
    ) -> tuple[torch.Tensor, list[State]]:
        """One decoder step: tokens [B] -> last [y ; ctx] [B, 2H] and the new states."""
        stats = tokens != PAD
        x = self.norm(self.embedding(tokens))
        new_states = []
        for layer, attn, keys, state in zip(self.layers, self.attention, enc.keys, states):
            y, state = layer.step(x, state, stats_mask=stats)
            ctx = attn(state[0].unsqueeze(1), keys, enc.mask, stats_mask=stats.unsqueeze(1))
            x = torch.cat((y, ctx.squeeze(1)), dim=1)
            new_states.append(state)
        return x, new_states

    def step(
        self, tokens: torch.Tensor, states: list[State], enc: EncoderOutput
    ) -> tuple[torch.Tensor, list[State]]:
        """tokens [B] -> logits [B, V] and the new per-layer states."""
        x, states = self.step_features(tokens, states, enc)
        return self.fc(x), states


class Translator(nn.Module):
    """English -> Chinese spiking translator. `kind`: "output" (output-spiking SLSTM cells, as
    SpikingParrot), "gate" (spikingjelly's gate-spiking cells) or "analog" (spike replaced by h).
    `threshold`: the output-spiking cells' initial (learnable) threshold, 1.0 as in snnTorch.
    `stack_memory=False` makes the encoder stack layers memoryless (each position's (h, c) is
    computed from the zero state), so the attention keys are per-position features of the
    bidirectional layer's output instead of a running summary that changes little along the
    sentence. The published model is memoryless there by accident (snnTorch's state reset when
    input size != hidden size, reproduced by `faithful`); on Tatoeba it trains faster (cpu
    preset, 6 epochs: test BLEU 4.3 with memory, 6.6 without; see nmt/presets.py).
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        embed: int = 128,
        hidden: int = 128,
        layers: int = 1,
        dropout: float = 0.1,
        kind: str = "output",
        faithful: bool = False,
        surrogate: str | None = None,
        threshold: float = 1.0,
        stack_memory: bool = True,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        for name, value in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab), ("embed", embed),
                            ("hidden", hidden), ("layers", layers)):  # fmt: skip
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.kind = kind
        self.faithful = bool(faithful)
        self.hidden = hidden
        self.num_layers = layers
        opts = LayerOptions(
            embed, hidden, layers, dropout, kind, self.faithful, surrogate, threshold
        )
        self.encoder = Encoder(src_vocab, opts, stack_memory=stack_memory)
        self.decoder = Decoder(tgt_vocab, opts)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> EncoderOutput:
        return self.encoder(src, src_len)

    def forward(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> torch.Tensor:
        """Logits [B, T, V] for decoder inputs tgt_in [B, T] ([BOS] y_1 ... y_{T-1}).

        With `teacher_forcing` < 1, each step after the first feeds, for the whole batch, the
        previous step's argmax instead of the true token with probability 1 - teacher_forcing
        (SpikingParrot draws once per step, not per sentence); `rng` draws the coin flips."""
        enc = self.encode(src, src_len)
        steps = tgt_in.shape[1]
        if teacher_forcing >= 1.0:
            return self.decoder.forward_teacher(tgt_in, enc)
        if rng is None:
            raise ValueError("teacher_forcing < 1 needs an rng for the per-step coin flips")
        teach = [True] + [bool(rng.random() < teacher_forcing) for _ in range(steps - 1)]
        if all(teach):
            return self.decoder.forward_teacher(tgt_in, enc)
        states = self.decoder.init_state(enc)
        logits = []
        prev = None
        for t in range(steps):
            tokens = tgt_in[:, t] if teach[t] else prev
            step_logits, states = self.decoder.step(tokens, states, enc)
            logits.append(step_logits)
            prev = step_logits.detach().argmax(-1)
        return torch.stack(logits, dim=1)

    # ---- statistics ------------------------------------------------------------------

    def spiking_layers(self) -> dict[str, SpikingLayer]:
        out = {
            "encoder.fwd": self.encoder.forward_layer,
            "encoder.bwd": self.encoder.backward_layer,
        }
        out.update({f"encoder.{i}": m for i, m in enumerate(self.encoder.layers)})
        out.update({f"decoder.{i}": m for i, m in enumerate(self.decoder.layers)})
        return out

    def set_tracking(self, on: bool) -> None:
        """Start (and reset) or stop counting spikes and positions in every layer."""
        for m in self.modules():
            if isinstance(m, (SpikingLayer, LuongAttention)):
                m.track = on
                if on:
                    m.reset_stats()

    def spike_rates(self) -> dict[str, float]:
        """Spikes per neuron per counted position, per layer, since tracking started."""
        return {
            name: (m.spike_sum / (m.position_sum * m.hidden_size) if m.position_sum else 0.0)
            for name, m in self.spiking_layers().items()
        }

    def operation_counts(self) -> dict[str, float]:
        """MACs (analog multiply-accumulates) and ACs (accumulates of spike inputs) since
        tracking started, by the weight matrices each layer multiplies:

        - cell input projection W_ih x: MACs (its input is analog, DyT output or [y ; ctx]);
        - cell recurrence W_hh h: MACs for analog h (output-spiking, analog); for the
          gate-spiking cell h is binary, so one AC per nonzero h per row (the layer's spikes
          stand in for the previous step's nonzero h);
        - W_l s: one AC per spike per row for spikes, MACs for the analog ablation;
        - the mixer W_m: MACs; attention: W_a h, scores and context, MACs; logits: MACs.
        DyT, softmax and gate nonlinearities are not counted."""
        macs = acs = 0.0
        for m in self.spiking_layers().values():
            n, hidden, d = m.position_sum, m.hidden_size, m.input_size
            out = 1.0 if m.has_output else 0.0  # W_l and the mixer exist (see SpikingLayer)
            macs += n * d * 4 * hidden + out * n * (hidden + d) * hidden
            if m.kind == "output":
                macs += n * hidden * 4 * hidden
                acs += out * m.spike_sum * hidden
            elif m.kind == "gate":
                acs += m.spike_sum * 4 * hidden + out * m.spike_sum * hidden
            else:
                macs += n * hidden * 4 * hidden + out * n * hidden * hidden
        positions = 0
        for a in self.decoder.attention:
            macs += a.query_sum * a.hidden_size * a.hidden_size + 2 * a.key_sum * a.hidden_size
            positions = a.query_sum
        macs += positions * self.decoder.fc.in_features * self.decoder.fc.out_features
        return {"macs": macs, "acs": acs, "target_positions": float(positions)}
