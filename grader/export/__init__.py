"""Grades in the formats other tools read: JSON, CSV, a Canvas gradebook, Gradescope results, feedback notebooks."""
