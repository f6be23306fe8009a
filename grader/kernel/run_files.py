"""The files the probe leaves in its run folder, named once for the kernel's side and the grader's (standard library
only: the grader imports this module)."""

FACTS = "facts.json"  # the probe's facts, rewritten after every cell
MODEL = "model.keras"  # the trained model, saved at the end for the re-evaluation
STUDENT_TEST = "student_test.npz"  # the notebook's own test arrays, saved beside it
# Created after the first cell that ran a fit: the notebook trains, so the re-evaluation will be needed and the
# grader starts its process then. The kernel can create it at will; that only starts the re-evaluation early.
TRAINING_STARTED = "training.started"
