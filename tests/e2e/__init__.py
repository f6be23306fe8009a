"""End-to-end tests: they run the real CLI (`python -m grader`) on real notebooks in real kernels, and look at
what a user gets: grades, exports, reports (in a browser). A test of one module's behaviour belongs beside that
module's tests instead (tests/x/test_y.py for grader/x/y.py)."""
