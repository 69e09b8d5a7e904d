"""Learning-rate schedules (planned: see the schedules issue)."""
