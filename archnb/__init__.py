__version__ = "0.0.1"

# Importing archnb registers ArchConfig and ArchForCausalLM with transformers' Auto classes.
from . import config, model  # noqa: E402,F401
