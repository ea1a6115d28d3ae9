#!/usr/bin/env bash
# CoMM at the CPU preset trained on unbiased and on synergy-biased pairs, seeds 0-2, each probed
# on the UNBIASED probe/test pairs at epochs 0-3 (the preset's 6-epoch cosine schedule, stopped
# once epoch 3 is saved): does biased training lift U1 (texture of x1)? docs/fidelity.md.
#   benchmarks/biased_vs_unbiased.sh WORK      (about 30 minutes on 2 cores; WORK is created)
set -euo pipefail
work="${1:?usage: biased_vs_unbiased.sh WORK}"
mkdir -p "$work" && cd "$work"
[ -d data_u ] || comm-diag generate --preset cpu --out data_u
[ -d data_s ] || comm-diag generate --preset cpu --synergy --out data_s
for seed in 0 1 2; do
  for kind in u s; do
    run="run_${kind}${seed}"
    if [ ! -f "$run/checkpoints/epoch_003.pt" ]; then
      comm-diag train --data "data_$kind" --preset cpu --seed "$seed" --out "$run" &
      pid=$!
      while kill -0 "$pid" 2>/dev/null; do
        if [ -f "$run/checkpoints/epoch_003.pt" ]; then sleep 5; kill -INT "$pid"; break; fi
        sleep 5
      done
      wait "$pid" || true  # interrupted on purpose: the finished epochs are kept
    fi
    comm-diag probe "$run" --data data_u --every 1 --allow-unfinished
  done
done
python - <<'PY'
import pandas as pd
rows = []
for kind, training in (("u", "unbiased"), ("s", "synergy-biased")):
    for seed in (0, 1, 2):
        d = pd.read_csv(f"run_{kind}{seed}/probes_by_epoch.csv")
        d = d[(d.probe == "linear") & (d.representation == "fused") & ~d.method.str.endswith("@init")]
        rows.append(d.assign(training=training))
d = pd.concat(rows)[["training", "seed", "epoch", "task", "balanced_accuracy"]]
d.to_csv("biased_vs_unbiased.csv", index=False)
g = d.groupby(["training", "task", "epoch"]).balanced_accuracy
print(pd.concat({"mean": g.mean(), "sd": g.std()}, axis=1).unstack().round(1).to_string())
PY
