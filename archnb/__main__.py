__all__ = []

# %% ../nbs/11_cli.ipynb #fa6a165f
#| eval: false
from .cli import main

if __name__ == "__main__": raise SystemExit(main())

# %% ../nbs/11_cli.ipynb #fa6a165f
#| eval: false
from .cli import main

if __name__ == "__main__": raise SystemExit(main())

# %% ../nbs/11_cli.ipynb #fa6a165f
#| eval: false
from .cli import main

if __name__ == "__main__": raise SystemExit(main())

# %% ../nbs/11_cli.ipynb #fa6a165f
#| eval: false
from .cli import main

if __name__ == "__main__": raise SystemExit(main())

# %% ../nbs/11_cli.ipynb #fa6a165f
#| eval: false
from .cli import main

if __name__ == "__main__": raise SystemExit(main())

# %% ../nbs/11_cli.ipynb #fa6a165f
#| eval: false
from .cli import main

if __name__ == "__main__": raise SystemExit(main())

# %% ../nbs/11_cli.ipynb #fa6a165f
#| eval: false
from .cli import main

if __name__ == "__main__": raise SystemExit(main())