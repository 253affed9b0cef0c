"""A run's folder, ``OUT/runs/<run-id>/``: the one place that names, reads and writes its files.

The names and formats are the contract in :mod:`latentbench.reports.schema`, which the report
reads with; this class adds what the harness does with them: a run whose ``status`` exists is
finished (it is read back, not run again), one without resumes from its ``checkpoint.pt``, and a
``metrics.json`` of another version is refused with a one-line error. Every write goes through
the atomic writer, so a kill leaves either the old file or the new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latentbench.models.registry import InputError
from latentbench.reports.atomic import (
    remove_stray_temporaries,
    write_json_atomic,
    write_text_atomic,
)
from latentbench.reports.schema import (
    RUNS_DIR,
    MetricsDocument,
    RunFiles,
    SchemaError,
    format_status,
    metrics_document,
    parse_metrics,
    parse_status,
)


class RunFolder:
    """The folder of run ``run_id`` in the output folder ``out_dir``.

    Attributes:
        path: ``out_dir/runs/<run_id>``.
    """

    def __init__(self, out_dir: Path, run_id: str) -> None:
        self.path = Path(out_dir) / RUNS_DIR / run_id

    def file(self, name: str) -> Path:
        """The path of one of the :class:`~latentbench.reports.schema.RunFiles` in the folder."""
        return self.path / name

    @property
    def checkpoint(self) -> Path:
        return self.path / RunFiles.CHECKPOINT

    @property
    def model(self) -> Path:
        return self.path / RunFiles.MODEL

    def prepare(self) -> None:
        """Create the folder and delete what a killed writer left in it (the run owns it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stray_temporaries(self.path)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> tuple[str, str] | None:
        """``(status, reason)`` of a finished run, or ``None`` when it has not finished."""
        path = self.path / RunFiles.STATUS
        if not path.exists():
            return None
        return parse_status(path.read_text(encoding="utf-8"))

    def write_status(self, status: str, reason: str = "") -> None:
        """Mark the run finished: ``done``, or ``failed`` with ``reason``. Written last."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path / RunFiles.STATUS, format_status(status, reason))

    # --- JSON files -------------------------------------------------------------------------

    def write_json(self, name: str, obj: Any) -> None:
        """Write ``obj`` to the folder's file ``name`` (``config.json``, ``train.json``, ...)."""
        write_json_atomic(self.path / name, obj)

    def read_metrics(self) -> MetricsDocument:
        """The finished run's ``metrics.json`` (empty when there is none: a failed run).

        Raises:
            InputError: the file is damaged or was written by an incompatible version.
        """
        path = self.path / RunFiles.METRICS
        if not path.exists():
            return MetricsDocument()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:  # a truncated or garbled file: JSON or UTF-8 errors
            raise InputError(f"{path}: not a metrics.json ({type(err).__name__}: {err}); "
                             f"delete the run's folder to run it again") from None
        try:
            return parse_metrics(document)
        except SchemaError as err:
            raise InputError(f"{path}: written by another version of latentbench ({err}); "
                             f"rerun into a new --out folder") from None

    def write_metrics(self, metrics: MetricsDocument) -> None:
        write_json_atomic(self.path / RunFiles.METRICS, metrics_document(metrics))

    def remove_checkpoint(self) -> None:
        """Delete the training checkpoint: once ``model.pt`` is written it holds the result."""
        self.checkpoint.unlink(missing_ok=True)
