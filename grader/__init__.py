"""mnist-grader: grade student notebooks for the MNIST image-classification assignment."""

__version__ = "0.1.0"
