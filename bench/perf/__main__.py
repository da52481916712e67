"""``python -m bench.perf``: the same as ``bench perf``."""

import sys

from bench.perf import main

sys.exit(main(prog="python -m bench.perf"))
