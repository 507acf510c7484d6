"""Text-to-video transformers: LatteT2V (Latte-1) and FrameDiT-H-T2V (official `models/*_t2v.py`).

    from framedit_jax.models.t2v import get_t2v_model
    model = get_t2v_model('FrameDiTHT2V-XL/256-2-1-2-concat', dtype='bfloat16')
    out = model.apply({'params': p}, x, t, text, text_mask)   # (B, F, H, W, 4) -> (B, F, H, W, 8)
"""

from framedit_jax.models.t2v.framedit_h_t2v import T2V_MODELS, FrameDiTHT2V, get_t2v_model
from framedit_jax.models.t2v.latte_t2v import LATTE1_CONFIG, LatteT2V, config_from_diffusers

__all__ = ['LATTE1_CONFIG', 'T2V_MODELS', 'FrameDiTHT2V', 'LatteT2V', 'config_from_diffusers', 'get_t2v_model']
