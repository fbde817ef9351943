"""Named models: what ``--model NAME`` can be besides a file.

``default`` is the embedded synthetic-world model. The YOLOX names are Megvii's official ONNX
release files (release 0.1.1rc0, Apache-2.0), run through the imported-ONNX path. Their figures
(parameters, input size, COCO val2017 mAP50-95) are the ones published beside the files in
Megvii-BaseDetection/YOLOX ``demo/ONNXRuntime/README.md``. No SHA-256 is pinned for them: none
of the release files could be fetched where this was written, and a hash is pinned only once
it has been seen. Until then each download is checked by its structure (it loads as ONNX, its
layout is YOLOX's, its input size and class count are the ones below), and the SHA-256 it had
then is kept beside it in the cache.

The torchvision names are single-stage COCO detectors from ``torchvision.models.detection``
(:mod:`detstream.engines.zoo.torchvision_models` wraps them to output our raw layout). Their
weights are
torchvision's published files, checked by the SHA-256 prefix in their names as torchvision
checks them, then by loading into the model; the first use exports them to ONNX in the cache.
Their mAP is torchvision's, measured at its own input size (800 px for the ResNet-50 models):
at the 640 used here expect somewhat less.
"""

from __future__ import annotations

from dataclasses import dataclass

from detstream.engines.errors import UserInputError

YOLOX_RELEASE = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0"
TORCHVISION_DOWNLOADS = "https://download.pytorch.org/models"


@dataclass(frozen=True)
class NamedModel:
    """One model ``--model`` can name.

    Attributes:
        name: what users write (``yolox-nano``).
        kind: ``embedded`` (shipped inside detstream), ``onnx`` (a downloaded ONNX file) or
            ``torchvision`` (downloaded torchvision weights, exported to ONNX in the cache).
        licence: the weights' licence.
        input_size: square input size it runs at.
        coco_map: published COCO val2017 box mAP50-95 (``None``: not a COCO model).
        params_m: parameters, millions.
        download_mb: about how much is downloaded (FP32 weights), MB.
        file_name: the file's name, in the cache and on a mirror.
        url: where it is downloaded from (``$DETSTREAM_MODEL_MIRROR`` replaces the base).
        sha256: the file's SHA-256 when one has been seen and pinned.
        hash_prefix: the start of the file's SHA-256 (torchvision's file names carry one).
        torchvision: the key of :data:`detstream.engines.zoo.torchvision_models.TORCHVISION_MODELS`.
        layout: the raw output layout the file must have.
        num_classes: the classes the file must predict.
    """

    name: str
    kind: str
    licence: str
    input_size: int
    coco_map: float | None
    params_m: float
    download_mb: float = 0.0
    file_name: str | None = None
    url: str | None = None
    sha256: str | None = None
    hash_prefix: str | None = None
    torchvision: str | None = None
    layout: str = "xywh_scores"
    num_classes: int = 80


def _yolox(size: str, input_size: int, coco_map: float, params_m: float) -> NamedModel:
    file_name = f"yolox_{size}.onnx"
    return NamedModel(f"yolox-{size}", "onnx", "Apache-2.0", input_size, coco_map, params_m,
                      download_mb=round(params_m * 4.0, 1), file_name=file_name,
                      url=f"{YOLOX_RELEASE}/{file_name}", layout="yolox")


def _torchvision(name: str, key: str, input_size: int, coco_map: float, params_m: float,
                 download_mb: float, file_name: str) -> NamedModel:
    return NamedModel(name, "torchvision", "BSD-3-Clause (torchvision)", input_size, coco_map,
                      params_m, download_mb=download_mb, file_name=file_name,
                      url=f"{TORCHVISION_DOWNLOADS}/{file_name}",
                      hash_prefix=file_name.rsplit("-", 1)[1].removesuffix(".pth"),
                      torchvision=key)


CATALOG: dict[str, NamedModel] = {m.name: m for m in (
    NamedModel("default", "embedded", "Apache-2.0 (detstream)", 416, None, 0.0,
               num_classes=0),
    _yolox("nano", 416, 25.8, 0.91),
    _yolox("tiny", 416, 32.8, 5.06),
    _yolox("s", 640, 40.5, 9.0),
    _yolox("m", 640, 47.2, 25.3),
    _yolox("l", 640, 50.1, 54.2),
    _torchvision("ssdlite320", "ssdlite320_mobilenet_v3_large", 320, 21.3, 3.44, 13.4,
                 "ssdlite320_mobilenet_v3_large_coco-a79551df.pth"),
    _torchvision("fcos-r50", "fcos_resnet50_fpn", 640, 39.2, 32.27, 123.6,
                 "fcos_resnet50_fpn_coco-99b0c9b7.pth"),
    _torchvision("retinanet-r50-v2", "retinanet_resnet50_fpn_v2", 640, 41.5, 38.2, 146.0,
                 "retinanet_resnet50_fpn_v2_coco-5905b1c5.pth"),
)}


def named_model(name: str) -> NamedModel | None:
    """The named model ``name`` (``yolox_nano`` and ``YOLOX-Nano`` spell ``yolox-nano``)."""
    return CATALOG.get(name.strip().lower().replace("_", "-"))


def require_named(name: str) -> NamedModel:
    """:func:`named_model`, or one clear error listing the names."""
    found = named_model(name)
    if found is None:
        raise UserInputError(f"{name!r} is not a model name; known: {', '.join(CATALOG)} "
                             "(detstream models lists them)")
    return found
