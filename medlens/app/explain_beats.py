"""A beat model's folder of records, for ``medlens explain``: one case per beat, not per record.

A beat model (``medlens train --windows beats``) classifies the windows cut ``before`` seconds ahead
of each annotated beat; explaining each record's window at 0 s showed a window the model never saw.
:class:`BeatCases` lists the beats of every record in record order, each mapped annotation once (the
beats ``predict`` scores, named as ``predictions.csv`` names them: ``case-0000@1595.636s``, the
beat's own time), and reads each case as ``explain RECORD --start`` does at that beat's window
start, so its ``signal.png`` shows the beat in record time with its annotations. ``--limit N``
explains the first N beats; without it the first :data:`FIRST_BEATS` (each beat's ``attribution.npy``
holds its whole record: MIT-BIH 100's 2,273 beats would write 12 GB), said in a note.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from medlens.app.inputs import RecipeOptions, model_cases
from medlens.data.cases import pseudonym
from medlens.data.record_cases import cut_windows, model_windows
from medlens.data.records import record_paths
from medlens.errors import InputError, MedlensError

__all__ = ["BeatCases", "FIRST_BEATS", "beat_model_folder", "beats_note"]

#: The beats a folder's explanation covers when ``--limit`` is not given.
FIRST_BEATS = 20


def beat_model_folder(data: str, meta: dict[str, Any], recipe: RecipeOptions) -> dict[str, Any] | None:
    """The window settings of a beat model given a folder of records (``None`` otherwise)."""
    settings = model_windows(meta, data, leads=recipe.leads)
    return settings if settings is not None and settings.get("kind", "beats") == "beats" else None


class BeatCases:
    """The annotated beats of the records of ``folder``, one case each (see the module's notes)."""

    def __init__(self, folder: str, meta: dict[str, Any], settings: dict[str, Any], recipe: RecipeOptions, *,
                 show_identifiers: bool = False, memory_mb: float | None = None) -> None:
        self.meta, self.recipe = meta, recipe
        self.reading = {"show_identifiers": show_identifiers, "memory_mb": memory_mb}
        self.beats: list[tuple[str, float]] = []  # (record path, the beat's window start in s)
        self.names: list[str] = []
        self.rows: list[dict[str, str]] = []
        first = ""
        for path in record_paths(folder):
            try:
                windows = cut_windows(path, settings)
            except MedlensError as err:  # unreadable, or no beat the model knows: the other records still count
                first = first or " ".join(str(err).split())
                continue
            record = windows.records[0]
            shown = record if show_identifiers else pseudonym(len(self.rows))
            self.rows.append({"case": shown, "record": record})
            for t in windows.times.tolist():
                self.beats.append((str(path), float(t) - float(windows.before)))
                self.names.append(f"{shown}@{float(t):.3f}s")
        if not self.beats:
            raise InputError(f"no record in {folder} has a beat the beat model knows ({first}); explain one record's "
                             "window with --input RECORD --start SECONDS")

    def __len__(self) -> int:
        return len(self.beats)

    def identifier_rows(self) -> list[dict[str, str]]:
        """One row per record for ``identifiers.csv``, as predict writes it."""
        return list(self.rows)

    def case(self, index: int) -> Any:
        """The beat's window, read from its record through the model's recipe at its start."""
        path, start = self.beats[index]
        recipe = dataclasses.replace(self.recipe, start=start)
        return model_cases(path, self.meta, recipe=recipe, **self.reading).case(0)


def beats_note(explained: int, beats: int) -> list[str]:
    """The note of a folder's explanation that covered ``explained`` of ``beats`` beats (``[]`` when all)."""
    if explained >= beats:
        return []
    return [f"explained the first {explained} of the {beats} beats (record order); --limit N explains more, one "
            "record's --start SECONDS one beat"]
