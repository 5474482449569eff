"""`python -m elmo ...`: train and score ELMo's biLM (see elmo.cli)."""

from __future__ import annotations

from elmo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
