"""Under torchrun, what is validated and tested is what best.pt holds: rank 0's weights and buffers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import read_metrics, run_ptlab
from test_distributed import torchrun


@pytest.mark.slow
def test_ddp_validation_of_a_batchnorm_model_is_the_evaluation_of_best_pt(workdir: Path) -> None:
    run_dir = workdir / "run"
    # simple_cnn has BatchNorm: each rank's running statistics come from its own shard of the data.
    proc = torchrun("task=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=8", "trainer.progress=plain", "device=cpu",
                    f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    trained = read_metrics(run_dir)
    for split in ("val", "test"):
        evaluated = run_ptlab("eval", f"ckpt={run_dir}/checkpoints/best.pt", f"split={split}", "device=cpu",
                              f"out={workdir}/{split}.json", cwd=workdir)
        assert evaluated.returncode == 0, evaluated.stderr
        one_process = json.loads((workdir / f"{split}.json").read_text())
        assert one_process[f"{split}/loss"] == pytest.approx(trained[f"{split}/loss"], rel=1e-5)
        assert one_process[f"{split}/acc"] == pytest.approx(trained[f"{split}/acc"], abs=1e-9)
