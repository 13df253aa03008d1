__version__ = "0.0.1"

# `import archnb` costs no torch: archnb's config and model are registered with transformers' Auto classes the
# moment transformers loads them (the import hook is in nbs/01_model.ipynb, exported to archnb/_autoreg.py).
from ._autoreg import install as _install  # noqa: E402

_install()
