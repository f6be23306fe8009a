"""Code that runs inside the sandbox: the recording probe and the fresh-process re-evaluation.

Imports only the standard library, numpy, keras and matplotlib, never the rest of `grader`: the sandbox
mounts this folder alone, as the package `grader_kernel`. Two of its modules, `keras_spelling` (standard
library) and `labels` (numpy), are also imported by the grader, so that both sides read Keras names and class
counts one way; nothing here imports Keras at package import.
"""
