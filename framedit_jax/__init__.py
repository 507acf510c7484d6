"""framedit-jax: FrameDiT video diffusion transformers in JAX/Flax."""

from framedit_jax import host_malloc as _host_malloc

_host_malloc.tune_glibc_malloc()  # CPU processes only; before XLA's threads first allocate (see host_malloc.py)
