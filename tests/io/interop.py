"""Reads what ssmrl wrote with numpy and plain struct/json, and writes a safetensors file back.

usage: interop.py DIR SCRIPTS_DIR
DIR holds policy.safetensors, policy.npz and expected.json (name -> {"shape": [...], "values": [...]},
row-major). Checks all three agree exactly, then writes DIR/from_python.safetensors holding
2 * value + 1 for every tensor, with the original metadata; DIR/from_numpy.npz by numpy.savez (a
float32 vector, a float64 matrix in Fortran order, a 3-D array); and DIR/state_dict.safetensors by
SCRIPTS_DIR/ssmrl_state_dict.py from a GRUCell(3, 2) + Linear(2, 2) state_dict stand-in whose every
value is (index within the tensor) / 10 + the tensor's position.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        dtype = {"F32": "<f4", "F64": "<f8"}[entry["dtype"]]
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(entry["shape"])
    return metadata, tensors


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main(folder, scripts):
    expected = json.load(open(f"{folder}/expected.json"))
    metadata, tensors = read_safetensors(f"{folder}/policy.safetensors")
    archive = np.load(f"{folder}/policy.npz")
    failures = []
    if metadata.get("format") != "ssmrl-checkpoint-1":
        failures.append(f"metadata format is {metadata.get('format')!r}")
    json.loads(metadata["model"])  # the configuration is valid JSON
    if set(tensors) != set(expected) or set(archive.files) != set(expected):
        failures.append(f"names differ: {sorted(tensors)} / {sorted(archive.files)} / {sorted(expected)}")
    for name, want in expected.items():
        want_array = np.array(want["values"], dtype=np.float64).reshape(want["shape"])
        for source, got in (("safetensors", tensors.get(name)), ("npz", archive[name] if name in archive.files else None)):
            if got is None or got.shape != want_array.shape or not np.array_equal(got, want_array):
                failures.append(f"{source} {name}: {None if got is None else got.shape} vs {want_array.shape}")
    if failures:
        print("\n".join(failures))
        return 1
    write_safetensors(f"{folder}/from_python.safetensors", {k: 2 * v + 1 for k, v in tensors.items()}, metadata)
    np.savez(f"{folder}/from_numpy.npz", bias=np.arange(3, dtype=np.float32) * 0.5,
             weight=np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3) / 7),
             cube=np.arange(8, dtype=np.float64).reshape(2, 2, 2))
    sys.path.insert(0, scripts)
    from ssmrl_state_dict import save_state_dict

    shapes = {"rnn.weight_ih": (6, 3), "rnn.weight_hh": (6, 2), "rnn.bias_ih": (6,), "rnn.bias_hh": (6,),
              "head.weight": (2, 2), "head.bias": (2,)}
    state = {name: np.arange(np.prod(shape), dtype=np.float64).reshape(shape) / 10 + k
             for k, (name, shape) in enumerate(shapes.items())}
    save_state_dict(state, f"{folder}/state_dict.safetensors", {"module": "GRUCell(3, 2); Linear(2, 2)"})
    print(f"python: {len(expected)} tensors agree in safetensors, npz and the expected values")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
