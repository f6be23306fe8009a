"""The rubric: `rubric.yaml`, the whole description of a homework, loaded into one frozen value."""
