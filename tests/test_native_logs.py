"""Native log lines written straight to file descriptor 2 are dropped; everything else passes."""

import subprocess
import sys

SCRIPT = """
import os, sys
from emotion_models.native_logs import silence_native_logs
silence_native_logs()
os.write(2, b"W0000 00:00:1732630000.123456   4242 inference_feedback_manager.cc:114] Feedback manager requires...\\n")
os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
print("a Python warning stays", file=sys.stderr)
os.write(2, b"error: models/face/model.pt is missing\\n")
os.write(2, b"no newline at the end")
"""


def test_native_lines_are_dropped_and_others_kept():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr == "a Python warning stays\nerror: models/face/model.pt is missing\nno newline at the end"
