"""``detstream doctor``: what this machine has, and what detstream can do with it."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata
from typing import Any

EXAMPLES = """examples:
  detstream doctor
  detstream doctor --json > doctor.json
"""

_PACKAGES = ("numpy", "torch", "torchvision", "onnx", "onnxruntime", "opencv-python", "av",
             "gradio", "tensorrt")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "doctor", help="check the installation: versions, GPUs, backends, video encoders",
        description="Print Python and library versions, the GPUs seen, which inference "
                    "backends are usable here (and why the others are not), and which video "
                    "encoders work.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.set_defaults(handler=run)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect() -> dict[str, Any]:
    """Everything ``doctor`` reports, as plain data."""
    import cv2

    from detstream.engines import __version__
    from detstream.engines.data.video import KNOWN_ENCODERS, probe_encoder
    from detstream.engines.runtime.availability import (
        backend_statuses,
        cuda_unavailable_reason,
        gpus,
    )

    packages = {name: _version(name) for name in _PACKAGES}
    if packages["opencv-python"] is None:
        packages["opencv-python"] = _version("opencv-python-headless")
    report: dict[str, Any] = {
        "detstream": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, "
                  f"{platform.system()} {platform.machine()})",
        "packages": packages,
    }
    try:
        import torch

        report["torch_cuda_build"] = torch.version.cuda
        report["torch_threads"] = torch.get_num_threads()
    except Exception:  # reported through backend statuses
        report["torch_cuda_build"] = None
    report["gpus"] = [vars(g) for g in gpus()]
    report["gpu_note"] = cuda_unavailable_reason()
    try:
        import onnxruntime

        report["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except Exception:
        report["onnxruntime_providers"] = []
    registry = cv2.videoio_registry
    usable = [registry.getBackendName(b) for b in registry.getBackends() if registry.hasBackend(b)]
    report["opencv_video_backends"] = list(dict.fromkeys(usable))
    try:
        import av

        report["ffmpeg"] = ".".join(str(v) for v in av.library_versions["libavcodec"])
    except Exception:
        report["ffmpeg"] = None
    report["backends"] = [vars(s) for s in backend_statuses()]
    report["encoders"] = []
    for codec in KNOWN_ENCODERS:
        works, detail = probe_encoder(codec)
        report["encoders"].append({"name": codec, "usable": works, "detail": detail})
    return report


def _mark(ok: bool) -> str:
    return "ok " if ok else "-- "


def render(report: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [f"detstream {report['detstream']}", f"  python        {report['python']}"]
    for name, version in report["packages"].items():
        extra = ""
        if name == "torch" and version:
            cuda = report.get("torch_cuda_build")
            extra = f"  (CUDA build {cuda})" if cuda else "  (CPU build)"
        if name == "av" and version and report.get("ffmpeg"):
            extra = f"  (libavcodec {report['ffmpeg']})"
        lines.append(f"  {name:<13} {version or 'not installed'}{extra}")
    lines.append(f"  ort providers {', '.join(report['onnxruntime_providers']) or 'none'}")
    lines.append(f"  opencv video  {', '.join(report['opencv_video_backends']) or 'none'}")
    lines.append("GPUs")
    if report["gpus"]:
        for g in report["gpus"]:
            lines.append(f"  cuda:{g['index']}  {g['name']}  (compute {g['capability']}, "
                         f"{g['memory_gib']:.0f} GiB)")
    else:
        lines.append(f"  none: {report['gpu_note']}")
    lines.append("Inference backends")
    for b in report["backends"]:
        lines.append(f"  {_mark(b['usable'])}{b['name']:<17} {b['detail']}")
    lines.append("Video encoders (PyAV)")
    for e in report["encoders"]:
        lines.append(f"  {_mark(e['usable'])}{e['name']:<17} {e['detail']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(report))
    return 0
