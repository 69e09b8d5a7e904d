"""The comparison tool: tasks, runner and report behind `optzoo compare`."""
