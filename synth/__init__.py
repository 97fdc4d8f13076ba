"""GANSynth Live: a playable neural synthesizer."""
import os as _os

# onnxruntime writes a device id and a telemetry database under ~/.cache/Microsoft when it is first imported
# unless this is set; disable_telemetry_events() alone does not stop it (onnxruntime 1.32, Linux).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
