"""``python -m brainllm_utils.synth ROOT [--preset P] [--seed S] [--overwrite] [quirk flags]`` (``--help``)."""

from ._generate import main

main()
