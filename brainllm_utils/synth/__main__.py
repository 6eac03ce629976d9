"""``python -m brainllm_utils.synth ROOT [--preset P] [--seed S] [--overwrite] [quirk flags]`` (``--help``).

An invalid argument exits with status 2 and a one-line message (no traceback).
"""

import sys

from ._generate import main

try:
    main()
except ValueError as err:  # a user's mistake: the message names the argument
    print(f"python -m brainllm_utils.synth: error: {err}", file=sys.stderr)
    raise SystemExit(2) from None
