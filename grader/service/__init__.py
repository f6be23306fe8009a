"""`grade serve`: a grading service a course runs on one machine, above the pipeline (nothing below imports it)."""
