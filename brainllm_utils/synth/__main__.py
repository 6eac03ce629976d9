"""``python -m brainllm_utils.synth ROOT [--preset P] [--seed S] [--overwrite]``."""

from ._generate import main

main()
