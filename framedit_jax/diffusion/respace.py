"""Timestep respacing (IDDPM `space_timesteps`): which original steps a shorter sampler keeps.

A respaced process keeps steps S = {s_0 < s_1 < ...} of the original one and gets new betas
β'_i = 1 − ᾱ_{s_i} / ᾱ_{s_{i-1}} (ᾱ_{s_{-1}} = 1), so that its ᾱ' equals the original ᾱ on S. The model is
still called with the ORIGINAL step s_i (`timestep_map[i]`).
"""

import numpy as np


def space_timesteps(num_timesteps, section_counts):
  """Picks the original steps to keep, exactly as IDDPM does.

  Args:
    num_timesteps: number of steps of the original process (e.g. 1000).
    section_counts: an int, a list of ints, or a string: "250" (one section), "10,20,30" (the process is cut
      into len(counts) near-equal sections and section i is strided to counts[i] steps, with rounding of a
      fractional stride), or "ddimN" (one integer stride s, the smallest with len(range(0, T, s)) == N).
      "" or None keeps every step.

  Returns:
    Sorted list of kept original step indices (ints in [0, num_timesteps)).

  Raises:
    ValueError: a section asks for more steps than it has, or "ddimN" has no exact integer stride.
  """
  if section_counts is None or section_counts == '':
    return list(range(num_timesteps))
  if isinstance(section_counts, int):
    section_counts = [section_counts]
  if isinstance(section_counts, str):
    if section_counts.startswith('ddim'):
      want = int(section_counts[len('ddim'):])
      for stride in range(1, num_timesteps):
        if len(range(0, num_timesteps, stride)) == want:
          return list(range(0, num_timesteps, stride))
      raise ValueError(f'timestep_respacing={section_counts!r}: no integer stride gives exactly {want} of '
                       f'{num_timesteps} steps; pick another N or use a plain count like "{want}".')
    section_counts = [int(c) for c in section_counts.split(',')]
  size_per, extra = divmod(num_timesteps, len(section_counts))
  start = 0
  kept = []
  for i, count in enumerate(section_counts):
    size = size_per + (1 if i < extra else 0)
    if size < count:
      raise ValueError(f'timestep_respacing: cannot take {count} steps from a section of {size} steps; '
                       f'use fewer steps per section.')
    stride = 1 if count <= 1 else (size - 1) / (count - 1)
    pos = 0.0
    for _ in range(count):
      kept.append(start + round(pos))  # Python round: banker's rounding, as IDDPM.
      pos += stride
    start += size
  return sorted(set(kept))


def respace_betas(alphas_cumprod, use_timesteps):
  """New betas of the respaced process and the map from new index to original step.

  Args:
    alphas_cumprod: (T,) float64 ᾱ of the original process.
    use_timesteps: iterable of kept original steps.

  Returns:
    (betas, timestep_map): (K,) float64 betas and (K,) int32 original step of each new index.
  """
  keep = sorted(set(int(s) for s in use_timesteps))
  new_betas, last = [], 1.0
  for s in keep:
    new_betas.append(1.0 - alphas_cumprod[s] / last)
    last = alphas_cumprod[s]
  return np.asarray(new_betas, np.float64), np.asarray(keep, np.int32)
