"""One evaluation pass: the mean loss and every metric of the objective over a split."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ptlab.engine.distributed import all_sum, broadcast_state
from ptlab.engine.precision import Precision

if TYPE_CHECKING:
    from ptlab.api import Run


@torch.no_grad()
def evaluate(run: Run, model: torch.nn.Module, precision: Precision, split: str) -> dict[str, float]:
    """``{split}/loss`` (the mean over samples, or over what the objective's ``loss_weight`` counts) and
    ``{split}/{metric}`` for each of the run's metrics.

    Under torchrun each rank evaluates its share of the split with rank 0's buffers
    (BatchNorm statistics: what best.pt holds); losses and metric states are summed over ranks.
    """
    model.eval()
    world = run.world
    if world.distributed:
        broadcast_state(model, buffers_only=True)
    objective = run.objective
    objective.start_evaluation(rank=world.rank, world_size=world.size)
    for fn in run.metric_fns.values():
        fn.reset()
    loss_sum, count = torch.zeros((), device=run.device), torch.zeros((), device=run.device)
    for batch in getattr(run.data, split).batches():
        with precision.autocast():
            loss, output, target = objective.loss(model, batch)
        weight = objective.loss_weight(target)  # what the batch's loss is a mean over: samples, or target tokens
        loss_sum += loss.float() * weight
        count += weight
        prediction = objective.predict(output)
        for fn in run.metric_fns.values():
            fn.update(prediction, target)
    totals = all_sum(torch.stack([loss_sum, count]))
    results = {f"{split}/loss": (totals[0] / totals[1].clamp(min=1)).item()}
    results.update({f"{split}/{name}": float(fn.compute()) for name, fn in run.metric_fns.items()})
    return results
