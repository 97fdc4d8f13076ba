"""One module per `gansynth-live` command: each holds its arguments (`register`) beside its code (`run`).

Heavy imports (torch, onnxruntime, sounddevice) stay inside `run`, so `--help` and argument errors are quick and
the live commands never load torch.
"""
