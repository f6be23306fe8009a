"""Code that runs inside the sandbox: the recording probe and the fresh-process re-evaluation.

Imports only the standard library, numpy, keras and matplotlib, never the rest of `grader`: the sandbox
mounts this folder alone, as the package `grader_kernel`.
"""
