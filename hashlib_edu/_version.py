"""The package's version and home, in a module of their own: core modules import them from
here, never from the package's ``__init__`` (which imports the core modules itself)."""

__version__ = "0.1.0"

#: The course repository: the one place its address is written (the notebooks' Colab badges
#: and install cells point to it).
REPO_URL = "https://github.com/hashlib-edu/hashlib_edu"
