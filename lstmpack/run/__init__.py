"""One compressed run, as plain stages, each in its own module.

config      flags -> RunConfig; every check on bad input, before anything is written
dense       train (or reuse) the dense model of (model, preset, seed), packed at alpha = 1
compressed  fine-tune under the passes, pack, prove the packing, simulate
small_dense the equal-columns dense baseline (--small-dense), in place of compressed
records     config.json, metrics.json, hwsim.json, table.md
cli         `python -m compress.run`: the stages in order
"""
