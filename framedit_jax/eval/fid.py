"""Frame-level FID and the Inception Score (IS) of videos.

* FID: the Fréchet distance (``frechet.py``, float64) between the 2048-d InceptionV3 pool features of all
  frames of the real and the generated clips (official FrameDiT ``tools/metrics/fid.py``: every frame of every
  16-frame clip is one sample).
* IS (Salimans et al. 2016): ``exp(E_x[KL(p(y|x) || p(y))])`` with ``p(y)`` the mean prediction of a split,
  reported as mean and std over ``num_splits`` equal consecutive splits (split ``i`` holds samples
  ``i N / s .. (i + 1) N / s``). The official FrameDiT IS (``tools/metrics/inception_score.py``) is one split
  over the I3D Kinetics-400 logits; StyleGAN-V's UCF101 ``isv`` uses C3D (``c3d.py``) with 10 splits of a
  shuffled set; image IS uses the 1008 InceptionV3 logits without the fc bias (``inception.py``
  ``logits_unbiased``, as OpenAI's original code and torch-fidelity).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from framedit_jax.eval import frechet
from framedit_jax.eval import inception


def _log_softmax64(logits: np.ndarray) -> np.ndarray:
  z = np.asarray(logits, np.float64)
  z = z - z.max(axis=1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def inception_score(logits, num_splits: int = 1, shuffle_seed: int | None = None) -> tuple[float, float]:
  """Inception Score of classifier logits, in float64.

  Args:
    logits: (N, K) logits (before softmax) of N generated samples over K classes.
    num_splits: number of equal consecutive splits (1 = the official FrameDiT IS; 10 = StyleGAN-V ``isv``).
    shuffle_seed: if given, rows are permuted with ``np.random.RandomState(shuffle_seed)`` first
      (StyleGAN-V shuffles with seed 42).

  Returns:
    (mean, std) of ``exp(mean_i KL(p(y|x_i) || p_split(y)))`` over the splits; 1 <= IS <= K.

  Raises:
    ValueError: not (N, K), or fewer samples than splits.
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2:
    raise ValueError(f'IS logits must be (num_samples, num_classes), got shape {logits.shape}.')
  n = logits.shape[0]
  if num_splits < 1 or n < num_splits:
    raise ValueError(f'IS needs at least num_splits={num_splits} >= 1 samples, got {n}.')
  if shuffle_seed is not None:
    logits = logits[np.random.RandomState(shuffle_seed).permutation(n)]
  scores = []
  for i in range(num_splits):
    logp = _log_softmax64(logits[i * n // num_splits:(i + 1) * n // num_splits])
    p = np.exp(logp)
    log_py = np.log(p.mean(axis=0))
    kl = np.sum(p * (logp - log_py[None]), axis=1).mean()
    scores.append(np.exp(kl))
  return float(np.mean(scores)), float(np.std(scores))


def fid_from_features(real, fake, ddof: int = 1) -> float:
  """FID between (N, 2048) and (M, 2048) pool features (float64 statistics; ``ddof`` as ``frechet``)."""
  return frechet.frechet_distance_of_features(real, fake, ddof)


class InceptionFeatureExtractor:
  """Batched, jitted InceptionV3 pool features and logits of frames or videos.

  ``extractor(frames)`` with (N, H, W, 3) frames (uint8 or float in [-1, 1]) returns ``{'pool': (N, 2048),
  'logits': (N, 1008), 'logits_unbiased': (N, 1008)}`` float32 (the last without the fc bias: the input of
  the original Salimans et al. / torch-fidelity IS); ``extractor.videos(v)`` with (B, T, H, W, 3) returns
  the same keys with (B, T, ...) shapes. Frames go through the network in fixed chunks of ``batch_size``
  (the last one zero-padded), so one compilation serves any N.

  Args:
    variables: Flax variables of ``inception.InceptionV3``; default: loaded from ``weights_path``.
    weights_path: user-supplied ``pt_inception-2015-12-05-6726825d.pth`` (or .npz/.safetensors).
    batch_size: frames per jitted call.
    mode: preprocessing, ``'pytorch_fid'`` or ``'torch_fidelity'`` (see ``inception.preprocess``).

  Raises:
    FileNotFoundError: no variables and a missing ``weights_path`` (one line naming --inception_weights).
  """

  def __init__(self, variables=None, weights_path: str | None = None, batch_size: int = 32,
               mode: str = 'pytorch_fid'):
    if variables is None:
      variables = inception.load_inception_variables(weights_path)
    self.variables = jax.tree_util.tree_map(jnp.asarray, variables)
    self.batch_size = int(batch_size)
    inception.preprocess(jnp.zeros((1, 8, 8, 3), jnp.uint8), mode)  # validates ``mode`` now
    model = inception.InceptionV3()

    def forward(v, x):
      out = model.apply(v, inception.preprocess(x, mode))
      return {k: out[k] for k in ('pool', 'logits', 'logits_unbiased')}

    self._forward = jax.jit(forward)

  def __call__(self, frames) -> dict[str, np.ndarray]:
    frames = np.asarray(frames)
    if frames.ndim != 4:
      raise ValueError(f'frames must be (N, H, W, 3), got shape {frames.shape}.')
    outs = []
    for s in range(0, frames.shape[0], self.batch_size):
      chunk = frames[s:s + self.batch_size]
      n = chunk.shape[0]
      if n < self.batch_size:
        chunk = np.concatenate([chunk, np.zeros((self.batch_size - n,) + chunk.shape[1:], chunk.dtype)])
      outs.append({k: np.asarray(v)[:n] for k, v in self._forward(self.variables, chunk).items()})
    if not outs:
      return {'pool': np.zeros((0, inception.POOL_DIM), np.float32),
              'logits': np.zeros((0, inception.NUM_CLASSES), np.float32),
              'logits_unbiased': np.zeros((0, inception.NUM_CLASSES), np.float32)}
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

  def videos(self, videos) -> dict[str, np.ndarray]:
    videos = np.asarray(videos)
    if videos.ndim != 5:
      raise ValueError(f'videos must be (B, T, H, W, 3), got shape {videos.shape}.')
    b, t = videos.shape[:2]
    out = self(videos.reshape((b * t,) + videos.shape[2:]))
    return {k: v.reshape((b, t) + v.shape[1:]) for k, v in out.items()}
