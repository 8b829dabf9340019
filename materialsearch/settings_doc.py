"""The settings' documentation, generated from their one declaration (``config.Settings``): the README's table
and the settings part of ``--help``. ``python -m materialsearch settings-doc --write`` rewrites the README's table;
a test fails when it is out of date."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_START = "<!-- settings table: generated from config.py by `python -m materialsearch settings-doc --write` -->"
TABLE_END = "<!-- end of the generated settings table -->"
HELP_WIDTH = 100


def markdown_table() -> str:
    """The README's table of every setting: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for info in Settings.describe():
        meaning = info.help.replace("|", "\\|")
        rows.append(f"| `{info.env}` | `{info.default or '(empty)'}` | {meaning} |")
    return "\n".join(rows) + "\n"


def readme_with_table(text: str) -> str:
    """``text`` (the README) with the part between the table's markers replaced by the current table."""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"the README lacks the settings table markers {TABLE_START!r} … {TABLE_END!r}")
    return text[: start + len(TABLE_START)] + "\n" + markdown_table() + text[end:]


def write_readme(path: Path = README) -> bool:
    """Rewrite the settings table in the README at ``path``; whether it changed."""
    text = path.read_text(encoding="utf-8")
    fresh = readme_with_table(text)
    if fresh != text:
        path.write_text(fresh, encoding="utf-8")
    return fresh != text


def help_text(width: int = HELP_WIDTH) -> str:
    """Every setting for a terminal: variable and default on one line, then the meaning, indented."""
    lines = ["settings (environment variables):"]
    for info in Settings.describe():
        lines.append(f"  {info.env} (default: {info.default or 'empty'})")
        meaning = info.help.replace("`", "")
        lines += textwrap.wrap(meaning, width=width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def argument_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A command's parser whose ``--help`` ends with every setting (``help_text``)."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=help_text(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
