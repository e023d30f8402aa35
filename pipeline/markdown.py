"""Markdown tables, for the reports the commands and the benchmarks write."""
from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table, a line per row, each ending in a newline."""
    return "\n".join(table_lines(header, rows)) + "\n"


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [row(header), row(["---"] * len(header)), *map(row, rows)]


def row(cells: Sequence[str]) -> str:
    """One line of a table; a `|` in a cell is escaped and a line break becomes a space,
    so that each cell stays in its column."""
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"
