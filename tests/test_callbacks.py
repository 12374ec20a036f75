"""Your own callbacks: from the config's ``callbacks:`` list or ``ptlab.train(cfg, callbacks=[...])``; their hooks,
and their state saved in checkpoints and given back on resume."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

import ptlab
from conftest import run_ptlab
from ptlab.engine.callbacks import Callback
from ptlab.errors import PtlabError

QUIET = ["trainer.progress=plain", "trainer.log_every_n_steps=1000"]

# A user's module, importable from the folder the command runs in (PYTHONPATH).
USER_MODULE = textwrap.dedent('''
    import json
    from pathlib import Path

    from ptlab.engine.callbacks import Callback


    class Tally(Callback):
        """Counts what it sees; the counts survive a resume through state_dict."""

        def __init__(self, out: str, every: int = 1) -> None:
            self.out, self.every = Path(out), every
            self.counts = {"batches": 0, "optimizer_steps": 0, "validations": 0, "with_gradients": 0}
            self.saved: list[str] = []

        def on_train_batch_end(self, trainer, batch, logs):
            self.counts["batches"] += 1

        def on_before_optimizer_step(self, trainer, name, optimizer):
            self.counts["optimizer_steps"] += 1
            grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
            self.counts["with_gradients"] += all(g is not None for g in grads)

        def on_validation_end(self, trainer, metrics, improved):
            self.counts["validations"] += 1

        def on_checkpoint_saved(self, trainer, path):
            self.saved.append(path.name)

        def on_fit_end(self, trainer, metrics):
            self.out.write_text(json.dumps({"counts": self.counts, "saved": self.saved, "every": self.every}))

        def state_dict(self):
            return {"counts": dict(self.counts)}

        def load_state_dict(self, state):
            self.counts = dict(state["counts"])
''')


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    (tmp_path / "user_callbacks.py").write_text(USER_MODULE)
    return tmp_path


def test_a_callback_from_the_command_line_sees_every_hook_and_its_keys(user_module: Path) -> None:
    run_dir, out = user_module / "run", user_module / "tally.json"
    proc = run_ptlab("train", "task=logreg", "trainer.max_epochs=2", *QUIET, f"hydra.run.dir={run_dir}",
                     f"callbacks=[{{_target_: user_callbacks.Tally, out: {out}, every: 3}}]",
                     cwd=user_module, env={"PYTHONPATH": str(user_module)})
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(out.read_text())
    steps = json.loads((run_dir / "metrics.json").read_text())["step"]  # 13 batches an epoch, 2 epochs
    assert seen["every"] == 3
    assert seen["counts"] == {"batches": steps, "optimizer_steps": steps, "validations": 2, "with_gradients": steps}
    assert seen["saved"].count("last.pt") >= 2 and "best.pt" in seen["saved"]
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["callbacks"]
    assert saved == {"Tally": {"counts": seen["counts"]}}


@pytest.mark.parametrize("entry, message", [
    ("{_target_: user_callbacks.Nope, out: x}", "callbacks[0]._target_: cannot import 'user_callbacks.Nope'"),
    ("{_target_: pathlib.Path}", "callbacks[0]._target_: pathlib.Path is not a subclass of ptlab.engine.callbacks"),
    ("{_target_: user_callbacks.Tally, out: x, evry: 2}", "callbacks[0].evry: unknown key for user_callbacks.Tally"),
    ("{_target_: user_callbacks.Tally}", "callbacks[0].out: required"),
])
def test_a_bad_callback_entry_is_one_line_and_no_run_folder(user_module: Path, entry: str, message: str) -> None:
    run_dir = user_module / "run"
    proc = run_ptlab("train", "task=logreg", f"callbacks=[{entry}]", f"hydra.run.dir={run_dir}", cwd=user_module,
                     env={"PYTHONPATH": str(user_module)})
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("ptlab: error:") == 1
    assert not run_dir.exists()


class Steps(Callback):
    """Counts optimizer steps; its count is saved with the run."""

    def __init__(self) -> None:
        self.steps = 0

    def on_step_end(self, trainer) -> None:
        self.steps += 1

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]


def test_a_resumed_run_gives_a_callback_back_its_state(tmp_path: Path) -> None:
    args = [*QUIET, "task=logreg", "scheduler=constant"]
    first, resumed = Steps(), Steps()
    ptlab.train(ptlab.compose([*args, "trainer.max_epochs=1"]), run_dir=tmp_path, callbacks=[first])
    metrics = ptlab.train(ptlab.compose([*args, "trainer.max_epochs=3", "resume=auto"]), run_dir=tmp_path,
                          callbacks=[resumed])
    assert first.steps == 13 and resumed.steps == metrics["step"] == 39  # 13 counted before, 26 after


def test_two_callbacks_of_one_class_keep_their_own_state(tmp_path: Path) -> None:
    a, b = Steps(), Steps()
    b.steps = 100
    ptlab.train(ptlab.compose([*QUIET, "task=logreg", "trainer.max_steps=2"]), run_dir=tmp_path, callbacks=[a, b])
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["callbacks"]
    assert saved == {"Steps": {"steps": 2}, "Steps#2": {"steps": 102}}


def test_state_that_a_checkpoint_cannot_hold_fails_before_training(tmp_path: Path) -> None:
    class Seen(Callback):
        def state_dict(self) -> dict:
            return {"ids": {1, 2}}

        def load_state_dict(self, state: dict) -> None: ...

    with pytest.raises(PtlabError, match=r"callbacks: .*Seen.state_dict\(\) holds a set at \['ids'\]"):
        ptlab.train(ptlab.compose([*QUIET, "task=logreg", "trainer.max_steps=2"]), run_dir=tmp_path,
                    callbacks=[Seen()])
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_the_python_api_refuses_what_is_not_a_callback() -> None:
    with pytest.raises(PtlabError, match="callbacks: object is not a ptlab.engine.callbacks.Callback"):
        ptlab.train(ptlab.compose([*QUIET, "task=logreg", "trainer.max_steps=1"]), callbacks=[object()])
