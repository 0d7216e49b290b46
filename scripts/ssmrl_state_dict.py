#!/usr/bin/env python3
"""Saves a PyTorch module's state_dict as safetensors under torch's own names, for ssmrl's importers
(io::import_torch_policy, io::import_torch_rnn, io::import_torch_linear; see
docs/how-to/import-pytorch-weights.md).

From Python:
    from ssmrl_state_dict import save_state_dict
    save_state_dict(model, "policy.safetensors")               # a module, or model.state_dict()
    save_state_dict(model, "policy.safetensors", {"note": "run 7"}, extra={"data.x": x})

From the shell, for a file written by torch.save (a module or a state_dict):
    python3 ssmrl_state_dict.py model.pt policy.safetensors

Tensors are written as float32 (F32) or float64 (F64), row-major, little-endian; other dtypes are
refused. The file is written to a temporary name, fsynced and renamed, so a crash leaves no half file.
"""
import json
import os
import struct
import sys

_DTYPES = {"float32": ("F32", "<f4"), "float64": ("F64", "<f8")}


def _as_array(value):
    """A numpy array from a torch tensor (detached, on the CPU) or anything numpy takes."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.name not in _DTYPES:
        raise ValueError(f"ssmrl_state_dict: dtype {array.dtype.name} is not float32 or float64")
    return np.ascontiguousarray(array, dtype=_DTYPES[array.dtype.name][1])


def safetensors_bytes(tensors, metadata=None):
    """The safetensors encoding of name -> array, in the order given, with string metadata."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        array = _as_array(value)
        blob = array.tobytes()
        header[name] = {"dtype": _DTYPES[array.dtype.name][0], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # keeps the data 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def save_state_dict(module_or_state_dict, path, metadata=None, extra=None):
    """Writes the state_dict (torch's names: rnn.weight_ih, head.weight, ...) and `extra` tensors."""
    state = module_or_state_dict
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    tensors = dict(state)
    for name, value in (extra or {}).items():
        if name in tensors:
            raise ValueError(f"ssmrl_state_dict: extra tensor {name} is also in the state_dict")
        tensors[name] = value
    data = safetensors_bytes(tensors, metadata)
    folder = os.path.dirname(os.path.abspath(path))
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[0])
        print("usage: ssmrl_state_dict.py MODEL_OR_STATE_DICT.pt OUT.safetensors")
        return 2
    import torch

    save_state_dict(torch.load(argv[1], map_location="cpu"), argv[2], {"source": os.path.basename(argv[1])})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
