"""The directory prometheus-client's multiprocess mode shares between worker processes.

prometheus-client decides how it stores samples when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``: the variable must be in the environment before a worker starts,
which is why this module does not import prometheus-client itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dataintel.settings import ObservabilitySettings

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(
    observability: ObservabilitySettings, workers: int
) -> tuple[Path, bool] | None:
    """For several workers: an empty directory, exported to them; (path, made here) or None.

    Samples left by an earlier run would be added to this one's, so its files are removed.
    """
    if workers <= 1 and observability.metrics_multiprocess_dir is None:
        return None
    made = observability.metrics_multiprocess_dir is None
    directory = (
        Path(tempfile.mkdtemp(prefix="dataintel-metrics-"))
        if observability.metrics_multiprocess_dir is None
        else observability.metrics_multiprocess_dir
    )
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    # Workers are new processes: the environment is how the directory reaches them.
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    return directory, made
