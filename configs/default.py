"""Base config shared by every framedit-jax experiment.

Dataset configs (`configs/taichi128.py`, ...) import `get_config()` from here and override fields.
Every field can be overridden on the command line, e.g.

  python launch/train.py --config=configs/taichi128.py --workdir=/tmp/w \
      --config.model.name=FrameDiTG-XL/128-512/2 --config.optim.lr=2e-4

Defaults follow the official FrameDiT configs (minhkhoale/FrameDiT `configs/<dataset>/*_train.yaml`); the
supplement's different values (arXiv 2603.09721 supplement §2.1: clip 1.0 from 100k, EMA 0.999) are options.
"""

from configs import common
import ml_collections


def get_config(arg: str | None = None):
  """Returns the default ConfigDict (official Taichi-style settings, no dataset)."""
  common.parse_arg(arg, {}, 'configs/default.py')  # takes no config argument
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.task = 'video'  # 'video' (class/unconditional diffusion) | 't2v' (configs/t2v_*.py) | 'dpvae' (DP-VAE)

  # ---------------------------------------------------------------- model
  config.model = m = ml_collections.ConfigDict()
  m.name = 'FrameDiTH-XL/128-512/2-concat'  # official registry name (framedit_jax.models.get_model)
  m.num_classes = 0  # 0 = unconditional (official `extras: 1`); >0 = class-conditional
  m.class_dropout_prob = 0.1
  m.learn_sigma = True
  m.dtype = 'bfloat16'  # compute dtype; params stay float32
  m.attention_kernel = 'einsum'  # 'einsum' (reference) | 'cudnn' (jax.nn.dot_product_attention)
  m.remat = False  # legacy switch: True = remat_policy 'full'
  # The next three are 'auto' by default: resolved per backend by framedit_jax/models/cpu/defaults.py (CPU: False,
  # 'none', 'on'; GPU/TPU: True, 'dots_with_no_batch_dims_saveable', 'off'). An explicit value always wins.
  # Per block: 'auto' | 'none' | 'full' | 'dots_saveable' | 'dots_with_no_batch_dims_saveable' | 'everything_saveable'.
  m.remat_policy = 'auto'
  # 'auto' | True | False: blocks as one lax.scan (same params/numbers; flat compile time in depth).
  m.scan_blocks = ml_collections.FieldReference('auto', field_type=object)
  # 'auto' | 'on' | 'off': the XLA CPU backward kernels of framedit_jax/models/cpu (same params and numbers).
  m.cpu_kernels = 'auto'
  # Frame parallelism (mesh.frame > 1): how Full 3D / Matrix Attention see other shards' K/V. 'gather' (all-gather
  # K/V), 'ring' (ppermute ring + online softmax) or 'ulysses' (all-to-all over heads): parallel/context_parallel.py
  m.context_parallel = 'gather'
  m.init_from = ml_collections.FieldReference(None, field_type=str)  # params dir (launch/init_from_image_dit.py)
  m.overrides = ml_collections.ConfigDict()  # extra get_model kwargs, e.g. hidden_size/depth/num_heads

  # ---------------------------------------------------------------- diffusion
  config.diffusion = d = ml_collections.ConfigDict()
  d.diffusion_steps = 1000
  d.noise_schedule = 'linear'
  d.learn_sigma = True  # must equal model.learn_sigma
  d.predict = 'epsilon'  # 'epsilon' | 'x0' | 'v'
  d.objective = 'iddpm'  # 'iddpm' | 'rectified_flow' (SD3: velocity, logit-normal t, Euler sampler; learn_sigma=False)
  d.rf_shift = 1.0  # rectified flow: SD3 time shift t -> s t / (1 + (s - 1) t)
  d.rf_logit_mean = 0.0  # rectified flow: training t = sigmoid(N(mean, std))
  d.rf_logit_std = 1.0

  # ---------------------------------------------------------------- data
  config.data = dd = ml_collections.ConfigDict()
  dd.dataset = 'taichi_hd'  # TFDS builder name in framedit_jax.data
  dd.data_dir = ml_collections.FieldReference(None, field_type=str)  # TFDS data_dir (None = TFDS default)
  dd.manual_dir = ml_collections.FieldReference(None, field_type=str)  # raw downloads for `tfds build`
  dd.split = 'train'
  dd.num_frames = 16
  dd.frame_interval = 3
  dd.image_size = 256  # pixel resolution (square)
  dd.use_image_num = 0  # image-video joint training (IMG variants)
  dd.video_prob = 1.0  # VideoDiT joint training: each step is a video step w.p. p, else B*T single frames
  dd.global_batch_size = 16  # official: local 4 x grad-accum 4 per GPU
  dd.num_parallel_calls = -1  # Grain read threads; -1 = one per CPU
  dd.prefetch = 2  # batches Grain prefetches ahead
  dd.use_latents = False  # read a latent cache made by launch/prepare_latents.py
  dd.latents_dir = ml_collections.FieldReference(None, field_type=str)
  dd.builder_config = ml_collections.FieldReference(None, field_type=str)  # e.g. 's256' (stored short side)
  dd.temporal_mode = ml_collections.FieldReference(None, field_type=str)  # None = per dataset ('stride'|'linspace')
  dd.spatial_mode = ml_collections.FieldReference(None, field_type=str)  # None = per dataset (official transforms)
  dd.random_flip = ml_collections.FieldReference(None, field_type=bool)  # None = per dataset
  dd.label_subfolders = False  # video_folder: labels from top-level subfolders
  dd.record_cache_mb = 256  # in-memory cache of decoded video records
  dd.latent_sample = True  # latent cache: sample the stored posterior (False = its mean)

  # ---------------------------------------------------------------- VAE
  config.vae = v = ml_collections.ConfigDict()
  v.name = 'sd'  # 'sd' (AutoencoderKL, sd-vae-ft-ema) | 'identity' (pixel space) | 'dpvae' (DP-VAE export dir)
  v.checkpoint = ml_collections.FieldReference(None, field_type=str)  # diffusers/LDM weights file
  v.scale_factor = 0.18215
  v.chunk_size = 16  # frames per VAE call
  v.dtype = 'float32'
  v.norm_num_groups = 32

  # ---------------------------------------------------------------- optimisation
  config.optim = o = ml_collections.ConfigDict()
  o.lr = 1e-4
  o.weight_decay = 0.0
  o.b1 = 0.9
  o.b2 = 0.999
  o.eps = 1e-8
  o.warmup_steps = 0
  o.decay_steps = 0  # > 0: cosine decay to 0 ending at this step (warm-up included); 0 = constant (official)
  o.clip_max_norm = 0.1
  o.start_clip_iter = 20_000
  o.ema_decay = 0.9999
  o.grad_accum_steps = 1  # micro-batches per step (global batch is split into this many)

  # ---------------------------------------------------------------- training loop
  config.train = t = ml_collections.ConfigDict()
  t.num_steps = 1_000_000
  t.log_every = 100
  t.ckpt_every = 10_000
  t.keep = 3  # most recent checkpoints kept
  t.keep_period = 0  # also keep every N-th step (0 = off)
  t.sample_every = 0  # 0 = only at the end
  t.fvd_every = 0  # >0: a small FVD of EMA samples vs real clips every this many steps (num_frames >= 9)
  t.fvd_num_videos = 16
  t.nan_policy = 'halt'  # 'halt' | 'skip'
  t.peak_tflops = 0.0  # device peak (bf16 dense TFLOP/s per device) for the MFU metric; 0 = not reported
  # Keep the optimizer state and the EMA in host memory (pinned_host) between steps, copied in and out by the step:
  # frees 3x the fp32 parameter bytes of device memory (AdamW mu, nu and the EMA) for host transfers each step.
  t.host_offload = False
  t.log_batch_hashes = False  # append sha1 of every batch to <workdir>/batch_hashes.jsonl (data audit)

  # ---------------------------------------------------------------- sampling
  config.sample = s = ml_collections.ConfigDict()
  s.sampler = 'ddpm'  # iddpm: 'ddpm' | 'ddim' | 'euler' | 'dpmpp_2m'; rectified_flow: 'euler' (diffusion/samplers.py)
  s.num_steps = 250  # respacing: DDPM-250 (official) or DDIM-N
  s.ddim_eta = 0.0
  s.cfg_scale = 1.0  # >1 enables classifier-free guidance (class-conditional models)
  s.clip_denoised = ml_collections.FieldReference(None, field_type=bool)  # None: True in pixel space only
  s.num_samples = 2
  s.batch_size = 2
  s.fps = 8

  # ---------------------------------------------------------------- device mesh
  config.mesh = mm = ml_collections.ConfigDict()
  mm.data = -1  # -1 = all remaining devices
  mm.fsdp = 1
  mm.frame = 1
  return config
