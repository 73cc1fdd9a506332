"""hashlib_edu: a hands-on course on deep hashing for image retrieval.

Modules, bottom to top: ``codes``, ``data``, ``metrics``, ``index`` (pure, no networks);
``models``, ``losses``, ``targets``, ``baselines``, ``features``; ``transforms``,
``training``, ``experiments``; ``results``, ``plots``; ``course`` (the notebook runner).
"""

__version__ = "0.1.0"

#: The course repository: the one place its address is written (notebook badges and the
#: Colab install cell are generated from it by ``tools/nbbuild.py``).
REPO_URL = "https://github.com/hashlib-edu/hashlib_edu"
