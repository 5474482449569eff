"""ELMo (Peters et al., NAACL 2018): a character-CNN bidirectional LSTM language model.

Model: each token's characters (bilm-tf's byte ids with word markers, elmo.chars) through a
character embedding, a CNN of several filter widths max-pooled over the token, highway layers and
a linear projection; a forward and a backward stack of LSTM layers with a projection
(`lstmpack.rnn.ProjectedLSTM`: every layer, direction and projection a maskable target), a
residual connection between the layers; one softmax shared by both directions (full, or TF's
sampled softmax for large vocabularies). Both LM losses summed; perplexity forward, backward and
their mean on word PTB (or the 1B Word Benchmark, the published setting).

The package, one job a module: `config` (ELMoConfig, presets), `chars` (character ids), `data`
(corpora, vocabulary, streams and windows), `softmax` (full and sampled), `model` (the biLM),
`evaluation` (perplexities), `training` (the resumable loop), `cli` (`python -m elmo`), `spec`
(the biLM as compress.run sees it: `--model elmo`). Nothing here runs at import, and importing
the package imports no more than its config.
"""

from __future__ import annotations

from elmo.config import PRESETS, ELMoConfig, preset_config

__all__ = ["PRESETS", "ELMoConfig", "preset_config"]
