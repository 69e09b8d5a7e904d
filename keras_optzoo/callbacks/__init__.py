"""Schedule and monitoring callbacks (planned: see the monitoring issue)."""
