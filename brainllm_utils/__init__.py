"""brainllm_utils: the tested package behind the brainllm book.

Reproduces and extends Doerig et al., *Visual representations in the human brain are
aligned with large language models* (Nature Machine Intelligence 2025).

Modules are imported lazily (``from brainllm_utils import nsd``); importing the package
itself never imports torch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
