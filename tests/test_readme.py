"""The documentation's examples and links hold: README.md and every page of docs/.

Every ``ptlab: error:`` line a page shows is what its command prints, verbatim. The
examples are read from the pages themselves: in a fenced block, a ``$ ptlab ...`` line
(continued by trailing backslashes, optionally after ``NAME=value`` environment
settings) directly followed by a ``ptlab: error: ...`` line. Each command runs as
``python -m ptlab`` in a fresh folder, and its one error line must equal the page's,
except for what depends on where and when it ran: the test's folder may appear in the
page as any absolute folder (the same one throughout a line), and a run directory's
timestamp as any timestamp.

That folder first gets every file the same page shows (a fenced block whose first line
is ``# PATH.py``), and what a few examples name: ``runs/digits`` (a cnn checkpoint on
the digits), ``runs/planted`` (a recsys checkpoint on the planted data),
``penguins.csv`` (a penguins-like CSV) and
``three_classes`` (a 3-class image folder).

Every relative link of the pages points at a file that exists, and a link with
``#anchor`` at a heading of that page; every page of docs/ is linked from README.md or
docs/README.md.
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
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def page_name(page: Path) -> str:
    """``README.md``, ``docs/debugging.md``: the page as the repository names it (a page elsewhere: its name)."""
    return page.relative_to(REPO).as_posix() if page.is_relative_to(REPO) else page.name


@dataclass(frozen=True)
class Example:
    """One example: the environment settings and arguments of ``ptlab``, the error line shown, and where."""

    env: dict[str, str]
    args: tuple[str, ...]
    error: str
    page: str
    line: int


def parse_command(command: str) -> tuple[dict[str, str], list[str]] | None:
    """``NAME=value ... ptlab ARGS  # comment`` → (environment settings, ARGS); None for any other command."""
    words = shlex.split(command, comments=True)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return (env, words[1:]) if words[:1] == ["ptlab"] else None


def error_examples(text: str, page: str) -> tuple[list[Example], list[int]]:
    """The (command, error line) pairs of ``text``'s fenced blocks, and the lines of errors shown without a command."""
    examples, orphans = [], []
    in_block, indent, command, previous = False, 0, "", ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):  # a fence, also one indented inside a list item
            in_block, command, previous = not in_block, "", ""
            indent = len(line) - len(line.lstrip())
            continue
        if not in_block:
            continue
        line = line[min(indent, len(line) - len(line.lstrip())):]  # as written inside the block
        if previous.endswith("\\"):  # a continued command line
            command = command[:-1] + " " + line.strip()
        elif line.startswith("$ "):
            command = line[2:]
        elif line.startswith(ERROR) and (parsed := parse_command(command)) is not None:
            examples.append(Example(parsed[0], tuple(parsed[1]), line, page, number))
            command = ""
        else:
            if line.startswith(ERROR):
                orphans.append(number)
            command = ""
        previous = line
    return examples, orphans


def shown_files(text: str) -> dict[str, str]:
    """The files a page shows: fenced blocks whose first line is ``# PATH.py`` (PATH relative)."""
    blocks = re.findall(r"^```[a-z]*\n# ([\w./-]+\.py)\n(.*?)^```", text, re.M | re.S)
    return {path: f"# {path}\n{body}" for path, body in blocks}


TEXTS = {page_name(page): page.read_text(encoding="utf-8") for page in PAGES}
EXAMPLES: list[Example] = []
ORPHANS: list[str] = []
for _name, _text in TEXTS.items():
    _examples, _orphans = error_examples(_text, _name)
    EXAMPLES += _examples
    ORPHANS += [f"{_name}:{number}" for number in _orphans]
FILES = {name: shown_files(text) for name, text in TEXTS.items()}


def make_digits_run(cwd: Path) -> None:
    run_ptlab("train", "task=cnn", "trainer.max_steps=1", "trainer.progress=plain", "hydra.run.dir=runs/digits",
              cwd=cwd, check=True)


def make_planted_run(cwd: Path) -> None:
    run_ptlab("train", "task=recsys", "trainer.max_steps=1", "objective.baselines=false", "trainer.progress=plain",
              "hydra.run.dir=runs/planted", cwd=cwd, check=True)


def make_penguins_csv(cwd: Path) -> None:
    """docs/linear-models.md's penguins.csv: 344 rows like the Palmer penguins file, string columns and NA cells."""
    import csv
    import random

    rng = random.Random(0)
    species = {"Adelie": (38.8, 18.3, 190, 3700, ["Biscoe", "Dream", "Torgersen"]),
               "Chinstrap": (48.8, 18.4, 196, 3733, ["Dream"]), "Gentoo": (47.5, 15.0, 217, 5076, ["Biscoe"])}
    rows = []
    for name, n in {"Adelie": 152, "Chinstrap": 68, "Gentoo": 124}.items():
        bill_length, bill_depth, flipper, mass, islands = species[name]
        for _ in range(n):
            rows.append([name, rng.choice(islands), round(rng.gauss(bill_length, 3.0), 1),
                         round(rng.gauss(bill_depth, 1.2), 1), round(rng.gauss(flipper, 7)), round(rng.gauss(mass, 450)),
                         rng.choice(["male", "female"])])
    rng.shuffle(rows)
    for r in rng.sample(range(len(rows)), 11):
        rows[r][6] = "NA"
    for r in rng.sample(range(len(rows)), 2):
        rows[r][2:7] = ["NA"] * 5
    with (cwd / "penguins.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
                         "sex"])
        writer.writerows(rows)


def make_three_classes(cwd: Path) -> None:
    digit_folder(cwd / "three_classes")


SETUP: dict[str, Callable[[Path], None]] = {  # a text in the command → what it needs in the folder
    "runs/digits/": make_digits_run, "runs/planted/": make_planted_run, "three_classes": make_three_classes,
    "penguins.csv": make_penguins_csv,
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


def test_the_pages_show_error_examples_and_each_with_its_command() -> None:
    assert len(EXAMPLES) >= 5, EXAMPLES
    assert not ORPHANS, f"{ORPHANS}: a `ptlab: error:` line with no `$ ptlab ...` line right above"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.page}:{e.line}")
def test_the_error_a_page_shows_is_what_its_command_prints(example: Example, tmp_path: Path) -> None:
    if any(arg.startswith("device=cuda") for arg in example.args) and torch.cuda.is_available():
        pytest.skip("the example is for a machine without CUDA")
    for relative, source in FILES[example.page].items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(source, encoding="utf-8")
    for needle, setup in SETUP.items():
        if any(needle in arg for arg in example.args):
            setup(tmp_path)
    proc = run_ptlab(*example.args, cwd=tmp_path, env=example.env)
    printed = [line for line in proc.stderr.splitlines() if line.startswith(ERROR)]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(printed) == 1, proc.stderr[-3000:]
    assert line_pattern(printed[0], tmp_path).fullmatch(example.error), (
        f"\n{example.page}:{example.line}: {example.error}\nptlab prints:  {printed[0]}")


# --- links ------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target); images left out
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) of ``text`` outside fenced blocks, with inline code spans blanked."""
    lines, in_block = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
        elif not in_block:
            lines.append((number, re.sub(r"`[^`]*`", lambda m: " " * len(m.group()), line)))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link outside code."""
    return [(number, target) for number, line in prose(text) for target in LINK.findall(line)]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped (code, links and emphasis marks too), spaces → -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings, numbered -1, -2, … when a heading repeats, as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    in_block = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        match = re.match(r"#{1,6} (.+)", line) if not in_block else None
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(page: Path, text: str) -> list[str]:
    """``page:line: target (why)`` for each relative link that points at no file, or at no heading of it."""
    broken = []
    for number, target in links(text):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        where = f"{page_name(page)}:{number}: {target}"
        if not file.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file.read_text(encoding="utf-8"))):
            broken.append(f"{where} (no heading #{anchor} in {file.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page: Path) -> None:
    assert not broken_links(page, TEXTS[page_name(page)]), "\n".join(broken_links(page, TEXTS[page_name(page)]))


def test_every_page_of_docs_is_linked_from_the_readme_or_the_index() -> None:
    linked = {(page.parent / target.partition("#")[0]).resolve()
              for page in (REPO / "README.md", REPO / "docs" / "README.md")
              for _, target in links(TEXTS[page_name(page)]) if not EXTERNAL.match(target)}
    unlinked = [page_name(page) for page in PAGES[1:] if page.resolve() not in linked and page.name != "README.md"]
    assert not unlinked, f"pages no one links to: {unlinked}"


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Choosing a learning rate: `ptlab lr-find`\n", encoding="utf-8")
    page = tmp_path / "page.md"
    text = ("# Page\n[ok](other.md) [ok](other.md#choosing-a-learning-rate-ptlab-lr-find) [ok](#page)\n"
            "[web](https://example.org) `[code](nowhere.md)`\n"
            "[gone](missing.md) [no heading](other.md#nothing)\n```\n[in a block](nowhere.md)\n```\n")
    page.write_text(text, encoding="utf-8")
    assert [line.split(": ", 1)[1] for line in broken_links(page, text)] == [
        "missing.md (no such file)", "other.md#nothing (no heading #nothing in other.md)"]
