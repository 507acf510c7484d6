"""Training tasks hosted by the one trainer (`framedit_jax.train.loop`); the interface is `tasks.base.Task`.

`config.task` picks one: 'video' (class-conditional / unconditional video diffusion, the default), 't2v'
(text-to-video, `configs/t2v_*.py`), 'dpvae' (the DP-VAE codec, `configs/dpvae_demo.py`).
"""

from __future__ import annotations

TASKS = ('video', 't2v', 'dpvae')


def task_name(config) -> str:
  return str(config.get('task', 'video'))


def make_task(config, mesh, workdir: str | None = None):
  """The task of ``config.task`` on ``mesh`` (opens the VAE / text encoder it needs; one-line errors).

  ``workdir``: the run directory (T2V keeps its text cache and demo assets there; a temporary one if None).

  Raises:
    ValueError: unknown ``config.task``.
  """
  name = task_name(config)
  if name == 'video':
    from framedit_jax.train.tasks.video import VideoTask  # pylint: disable=g-import-not-at-top
    from framedit_jax.vae import load_vae  # pylint: disable=g-import-not-at-top
    return VideoTask(config, mesh, load_vae(config.vae))
  if name == 't2v':
    from framedit_jax.train.tasks.t2v import T2VTask  # pylint: disable=g-import-not-at-top
    return T2VTask(config, mesh, workdir)
  if name == 'dpvae':
    from framedit_jax.train.tasks.dpvae import DPVAETask  # pylint: disable=g-import-not-at-top
    return DPVAETask(config, mesh, workdir)
  raise ValueError(f'config.task={name!r}: must be one of {", ".join(repr(t) for t in TASKS)}.')
