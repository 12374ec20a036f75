"""Every ``ptlab: error:`` line that README.md shows is what its command prints, verbatim.

The examples are read from README.md itself: in a fenced block, a ``$ ptlab ...``
line (continued by trailing backslashes, optionally after ``NAME=value`` environment
settings) directly followed by a ``ptlab: error: ...`` line. Each command runs as
``python -m ptlab`` in a fresh folder, and its one error line must equal the
README's, except for what depends on where and when it ran: the test's folder may
appear in the README as any absolute folder (the same one throughout a line), and a
run directory's timestamp as any timestamp.

That folder first gets every file README.md shows (a fenced block whose first line
is ``# PATH.py``), and what a few examples name: ``runs/digits`` (a cnn checkpoint
on the digits) and ``three_classes`` (a 3-class image folder).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from conftest import REPO, run_ptlab
from test_checkpoint import digit_folder

ERROR = "ptlab: error: "
TIMESTAMP = r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(?:_\d+)?"  # a default run directory, made unique by _N


@dataclass(frozen=True)
class Example:
    """One README example: the environment settings and arguments of ``ptlab``, the error line shown, and where."""

    env: dict[str, str]
    args: tuple[str, ...]
    error: str
    line: int


def parse_command(command: str) -> tuple[dict[str, str], list[str]] | None:
    """``NAME=value ... ptlab ARGS  # comment`` → (environment settings, ARGS); None for any other command."""
    words = shlex.split(command, comments=True)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return (env, words[1:]) if words[:1] == ["ptlab"] else None


def readme_examples(text: str) -> tuple[list[Example], list[int]]:
    """The (command, error line) pairs of ``text``'s fenced blocks, and the lines of errors shown without a command."""
    examples, orphans = [], []
    in_block, command, previous = False, "", ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block, command, previous = not in_block, "", ""
            continue
        if not in_block:
            continue
        if previous.endswith("\\"):  # a continued command line
            command = command[:-1] + " " + line.strip()
        elif line.startswith("$ "):
            command = line[2:]
        elif line.startswith(ERROR) and (parsed := parse_command(command)) is not None:
            examples.append(Example(parsed[0], tuple(parsed[1]), line, number))
            command = ""
        else:
            if line.startswith(ERROR):
                orphans.append(number)
            command = ""
        previous = line
    return examples, orphans


def readme_files(text: str) -> dict[str, str]:
    """The files README.md shows: fenced blocks whose first line is ``# PATH.py`` (PATH relative)."""
    blocks = re.findall(r"^```[a-z]*\n# ([\w./-]+\.py)\n(.*?)^```", text, re.M | re.S)
    return {path: f"# {path}\n{body}" for path, body in blocks}


README = (REPO / "README.md").read_text(encoding="utf-8")
EXAMPLES, ORPHANS = readme_examples(README)
FILES = readme_files(README)


def make_digits_run(cwd: Path) -> None:
    run_ptlab("train", "task=cnn", "trainer.max_steps=1", "trainer.progress=plain", "hydra.run.dir=runs/digits",
              cwd=cwd, check=True)


def make_three_classes(cwd: Path) -> None:
    digit_folder(cwd / "three_classes")


SETUP: dict[str, Callable[[Path], None]] = {  # a text in the command → what it needs in the folder
    "runs/digits/": make_digits_run, "three_classes": make_three_classes,
}


def line_pattern(printed: str, folder: Path) -> re.Pattern[str]:
    """``printed`` as a pattern in which ``folder`` matches any absolute folder and a timestamp any timestamp."""
    pieces, named = [], False
    for part in re.split(f"({re.escape(str(folder))}|{TIMESTAMP})", printed):
        if part == str(folder):
            pieces.append("(?P=folder)" if named else r"(?P<folder>/\S*?)")
            named = True
        elif re.fullmatch(TIMESTAMP, part):
            pieces.append(TIMESTAMP)
        else:
            pieces.append(re.escape(part))
    return re.compile("".join(pieces))


def test_the_readme_shows_error_examples_and_each_with_its_command() -> None:
    assert len(EXAMPLES) >= 5, EXAMPLES
    assert not ORPHANS, f"README.md lines {ORPHANS}: a `ptlab: error:` line with no `$ ptlab ...` line right above"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"README:{e.line}")
def test_the_readme_error_is_what_its_command_prints(example: Example, tmp_path: Path) -> None:
    if any(arg.startswith("device=cuda") for arg in example.args) and torch.cuda.is_available():
        pytest.skip("the example is for a machine without CUDA")
    for relative, source in FILES.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(source, encoding="utf-8")
    for needle, setup in SETUP.items():
        if any(needle in arg for arg in example.args):
            setup(tmp_path)
    proc = run_ptlab(*example.args, cwd=tmp_path, env=example.env)
    printed = [line for line in proc.stderr.splitlines() if line.startswith(ERROR)]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(printed) == 1, proc.stderr[-3000:]
    assert line_pattern(printed[0], tmp_path).fullmatch(example.error), (
        f"\nREADME.md:{example.line}: {example.error}\nptlab prints:  {printed[0]}")
