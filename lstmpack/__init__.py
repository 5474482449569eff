"""The run layer: a compression run and a sweep of runs, as plain stages above compress, hwsim
and reports.

    registry   model name -> its ModelSpec (imported only when that model is asked for)
    run/       one compressed run: configuration -> dense stage -> compressed stage -> records
    sweep/     a grid of runs, each one a subprocess of `python -m compress.run`

`python -m compress.run` and `python -m compress.sweep` stay the documented commands; they are
thin shims over `lstmpack.run.cli` and `lstmpack.sweep.cli`. Nothing below this package imports it.
"""
