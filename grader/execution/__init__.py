"""Runs one notebook with nbclient inside the sandbox and returns its facts (`run.grade_run`)."""
