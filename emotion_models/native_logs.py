"""Keep native libraries' log lines (MediaPipe, TFLite, absl/glog) off the terminal unless asked for.

Those libraries write straight to file descriptor 2 from C++, past Python's logging, so stderr is
routed through a pipe that drops lines in their format and passes every other line on unchanged.
Child processes (feature workers, Dask workers) inherit the filtered descriptor.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# absl/glog: "W0000 00:00:1732630000.123456   12345 file.cc:123] ..."; TFLite's delegate banner.
NATIVE_LOG_LINE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+\] |INFO: Created TensorFlow Lite "
                             rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")
_installed = False


def silence_native_logs() -> None:
    """Filter native log lines out of this process's stderr (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            pending = b""
            while chunk := source.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line))
                if kept:
                    os.write(terminal, kept)
            if pending and not NATIVE_LOG_LINE.match(pending):
                os.write(terminal, pending)

    thread = threading.Thread(target=pump, name="native-log-filter", daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes this process's write end: the pump drains and stops
        thread.join(timeout=2)

    atexit.register(restore)

