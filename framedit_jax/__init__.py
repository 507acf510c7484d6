"""framedit-jax: FrameDiT video diffusion transformers in JAX/Flax."""
