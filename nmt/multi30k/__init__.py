"""A GRU encoder-decoder with attention, German to English on Multi30k (task 1, tokenized and
lowercased).

Model: embeddings, a bidirectional GRU encoder (`lstmpack.rnn.GRU`: every layer and direction a
maskable layer the passes compress), additive attention (or none: the seed's model, whose decoder
starts from the encoder's final states and sees no context), a GRU decoder stepped one token at a
time, a tanh readout and the vocabulary projection. Teacher forcing, Adam, greedy and beam
decoding, sacreBLEU (tokenize="none") on test_2016_flickr with its signature.

The package, one job a module: `config` (Multi30kConfig, presets), `data` (files, vocabularies,
length batches), `model` (the translator), `decode` (greedy, beam search), `evaluation` (loss,
translations, BLEU), `training` (the resumable loop), `cli` (`python -m nmt.multi30k`), `spec`
(the translator as compress.run sees it: `--model multi30k`). Nothing here runs at import, and
importing the package imports no more than its config.
"""

from __future__ import annotations

from nmt.multi30k.config import ATTENTIONS, PRESETS, Multi30kConfig, preset_config

__all__ = ["ATTENTIONS", "PRESETS", "Multi30kConfig", "preset_config"]
