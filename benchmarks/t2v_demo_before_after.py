"""The T2V demo (configs/t2v_demo.py) trained by the old T2V loop and by the one trainer, side by side.

  python benchmarks/t2v_demo_before_after.py --before=/tmp/before --rounds=1 \
      --out=benchmarks/results/t2v_demo_cpu.jsonl

`--before` is a checkout of the commit before the trainer unification (`git worktree add /tmp/before 339bc4a`),
whose `framedit_jax.train.t2v.train_t2v` is the old loop. Each round runs `before` then `after` in fresh
subprocesses (interleaved, so a busy machine slows both alike). One JSON line per run: steady-state steps/s
(steps 51..N, input included, compile excluded), the per-step loss curve and the wall time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child(variant: str, workdir: str, num_steps: int) -> dict:
  sys.path.insert(0, os.environ['PYTHONPATH'].split(':')[0])
  from configs import t2v_demo  # pylint: disable=g-import-not-at-top
  config = t2v_demo.get_config()
  config.train.num_steps = num_steps
  config.train.ckpt_every = num_steps
  config.train.log_every = 1
  stamps = []
  t0 = time.time()
  if variant == 'before':
    from framedit_jax.train import t2v  # pylint: disable=g-import-not-at-top
    real = t2v.CaptionedClips.batch
    t2v.CaptionedClips.batch = lambda self, *a: (stamps.append(time.time()), real(self, *a))[1]
    losses = t2v.train_t2v(config, workdir)['losses']
  else:
    from framedit_jax.train import loop  # pylint: disable=g-import-not-at-top
    from framedit_jax.train.tasks.t2v import T2VTask  # pylint: disable=g-import-not-at-top
    real = T2VTask.host_batch
    T2VTask.host_batch = lambda self, *a: (stamps.append(time.time()), real(self, *a))[1]
    config.sample.num_steps = 2  # the end-of-run sample is not part of the comparison (the old loop had none)
    loop.train_and_evaluate(config, workdir)
    sys.path.insert(0, os.path.join(REPO, 'tests'))
    import _train_utils  # pylint: disable=g-import-not-at-top
    curve = _train_utils.scalars(workdir, 'train/loss')
    losses = [curve[s] for s in sorted(curve)]
  warm = 50
  return {'variant': variant, 'num_steps': num_steps, 'wall_s': time.time() - t0,
          'steps_per_sec': (len(stamps) - 1 - warm) / (stamps[-1] - stamps[warm]), 'losses': losses}


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--before', default='/tmp/before')
  p.add_argument('--rounds', type=int, default=1)
  p.add_argument('--num_steps', type=int, default=400)
  p.add_argument('--out', default=None)
  p.add_argument('--child', default=None)
  p.add_argument('--workdir', default=None)
  a = p.parse_args()
  if a.child:
    print('RESULT ' + json.dumps(_child(a.child, a.workdir, a.num_steps)), flush=True)
    return
  sys.path.insert(0, REPO)
  from benchmarks import common  # pylint: disable=g-import-not-at-top
  header = dict(common.machine_info(), benchmark='t2v_demo_before_after', before_commit='339bc4a',
                load_avg=os.getloadavg())
  for r in range(a.rounds):
    for variant, root in (('before', a.before), ('after', REPO)):
      env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL='2')
      with tempfile.TemporaryDirectory() as work:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), f'--child={variant}', f'--workdir={work}',
                              f'--num_steps={a.num_steps}'], env=env, cwd=root, capture_output=True, text=True)
      line = [l for l in out.stdout.splitlines() if l.startswith('RESULT ')]
      if not line:
        raise RuntimeError(out.stderr[-3000:])
      rec = dict(header, round=r, load_avg_end=os.getloadavg(), **json.loads(line[-1][7:]))
      common.emit(rec, a.out)


if __name__ == '__main__':
  main()
