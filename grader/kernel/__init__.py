"""Code that runs inside the sandbox: the recording probe and the fresh-process re-evaluation.

Imports only the standard library, numpy, keras and matplotlib, never the rest of `grader`: the sandbox
mounts this folder alone, as the package `grader_kernel`. Three of its modules, `keras_spelling` and `run_files`
(standard library) and `labels` (numpy), are also imported by the grader, so that both sides read Keras names,
the run folder's files and class counts one way; nothing here imports Keras at package import.
"""
