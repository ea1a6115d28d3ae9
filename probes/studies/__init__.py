"""Running studies: the plan of runs (sweep), where they run (executors), the Study value
and its registry, the one pipeline, and the studies built on it (check, dose, calibration,
ablations)."""
