"""The sandbox that student code runs in: bubblewrap, resource limits and their watchdog; knows nothing of notebooks.

A sandboxed process sees the system read-only (only the paths Python needs), fresh scratch folders capped in
size and in number of files as its home, /tmp and /dev/shm, the dataset read-only, one run directory for its
results, and the socket directory of its kernel channels; nothing else is writable, not even the sandbox's own
root and /dev, which live in memory. It has no network (own network namespace), its own pid namespace, uid
65534 (on the host too, when the grader is root), no capabilities, a seccomp filter, cannot make further user
namespaces, and dies with the grader. Memory and process counts are capped by a cgroup when one can be
created, and by a watchdog that measures the process tree and the host folders either way. The host folders
the sandbox writes are walked and removed without recursion and without following links.

- `limits`: the rubric's limits of one run.
- `host`: what this host allows (bubblewrap and its options, running it as nobody, mounts of its own).
- `placement`: where a run's files live on the host and inside, and the sandboxed process's environment.
- `seccomp`: the system calls refused.
- `bwrap`: the bubblewrap command line.
- `cgroup`: the cgroup of one run, and its process tree's memory.
- `safe_tree`: measuring and removing the host folders the sandbox wrote.
- `watchdog`: killing a sandbox over a limit.
"""
