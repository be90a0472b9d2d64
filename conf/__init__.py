"""The configs, installed as the package ``mlp_sweep.conf`` (pyproject.toml maps it here),
so that ``pip install .`` or a wheel carries them and Hydra finds them as
``pkg://mlp_sweep.conf`` wherever the app runs. Only YAML lives below."""
