"""Latte / DiT3D / FrameDiT-G / FrameDiT-H video diffusion transformers (Flax linen).

    from framedit_jax.models import get_model, list_models
    module = get_model('FrameDiTH-XL/128-512/2-concat', num_classes=0, dtype='bfloat16')
    params = module.init({'params': k1, 'dropout': k2}, x, t, y)['params']
    out = module.apply({'params': params}, x, t, y, train=False)   # (B, T, H, W, 2C)

Classifier-free guidance wraps the model in the samplers: `framedit_jax.diffusion.guidance.guided_model_fn`.
"""

from framedit_jax.models.attention import Attention, MatrixAttention, MatrixLinear
from framedit_jax.models.backbone import LatteStyleDiT
from framedit_jax.models.fusion import HybridTemporalAttention
from framedit_jax.models.registry import get_model, list_models, model_config

__all__ = [
    'Attention', 'HybridTemporalAttention', 'MatrixAttention', 'MatrixLinear', 'LatteStyleDiT',
    'get_model', 'list_models', 'model_config',
]
