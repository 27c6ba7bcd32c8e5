"""A checkpoint's processor, loaded with transformers' own classes, and a video path that runs without torchvision.

transformers' Qwen2-VL video processor (which Qwen2.5-Omni uses) is written on torchvision. Where torchvision is
installed, the checkpoint's processor is loaded as it is (``from_pretrained``). Where it is not (CPU builds of torch
that torchvision's wheels do not load against, as on the machine this was written on), the other parts are loaded
with their Auto classes and the video part is ``FramePatchVideoProcessor``: each frame goes through the checkpoint's
own image processor (resize to the video's pixel budget, rescale, normalise with the video config's mean and std,
cut into patches), and consecutive frames are stacked into the temporal patches in the layout of
``Qwen2VLVideoProcessor.patchify`` (rows: time, then the merge-ordered grid; columns: channel, time, height,
width). The one difference is the resampling filter (PIL bicubic instead of torchvision's), so pixel values differ
slightly from a torchvision install; the token counts and the layout are the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.errors import CrabEvalError

VIDEO_CONFIG_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def torchvision_usable() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # not installed, or built against another torch (its operators fail to register)
        return False
    return True


def video_config(path: Path) -> dict[str, Any]:
    for name in VIDEO_CONFIG_FILES:
        if (path / name).is_file():
            return dict(json.loads((path / name).read_text(encoding="utf-8")))
    return {}


def chat_template(path: Path, tokenizer: Any) -> str | None:
    jinja, as_json = (path / name for name in CHAT_TEMPLATE_FILES)
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    if as_json.is_file():
        return json.loads(as_json.read_text(encoding="utf-8")).get("chat_template")
    return getattr(tokenizer, "chat_template", None)


def frame_patch_class() -> type:
    """``FramePatchVideoProcessor``, made on first use (its base class comes from transformers)."""
    from transformers.feature_extraction_utils import BatchFeature
    from transformers.video_processing_utils import VideoProcessorMixin

    class FramePatchVideoProcessor(VideoProcessorMixin):
        model_input_names = ["pixel_values_videos", "video_grid_thw"]  # noqa: RUF012 - transformers' attribute

        def __init__(self, image_processor: Any, config: dict[str, Any]) -> None:
            super().__init__()
            self.image_processor = image_processor
            size = dict(config.get("size") or {})
            if "min_pixels" in config:
                size["shortest_edge"] = config["min_pixels"]
            if "max_pixels" in config:
                size["longest_edge"] = config["max_pixels"]
            self.size = size or None
            self.patch_size = int(config.get("patch_size", image_processor.patch_size))
            self.temporal_patch_size = int(config.get("temporal_patch_size", image_processor.temporal_patch_size))
            self.merge_size = int(config.get("merge_size", image_processor.merge_size))
            self.image_mean = config.get("image_mean", image_processor.image_mean)
            self.image_std = config.get("image_std", image_processor.image_std)

        def preprocess(self, videos: Sequence[Any], **kwargs: Any) -> Any:
            size: Any = kwargs.get("size") or self.size
            if hasattr(size, "to_dict"):
                size = {k: v for k, v in size.to_dict().items() if v is not None}
            tp, p = self.temporal_patch_size, self.patch_size
            patches, grids = [], []
            for video in videos:
                frames = [np.asarray(frame) for frame in video]
                out = self.image_processor(
                    images=frames,
                    size=size,
                    image_mean=self.image_mean,
                    image_std=self.image_std,
                    patch_size=p,
                    temporal_patch_size=tp,
                    merge_size=self.merge_size,
                    return_tensors="np",
                )
                _, gh, gw = (int(v) for v in out["image_grid_thw"][0])
                n = len(frames)
                # the image processor repeats each frame over the temporal axis: keep one copy per frame
                per_frame = np.asarray(out["pixel_values"]).reshape(n, gh * gw, -1, tp, p, p)[:, :, :, 0]
                if pad := -n % tp:  # as the video processor does: repeat the last frame
                    per_frame = np.concatenate([per_frame, np.repeat(per_frame[-1:], pad, axis=0)])
                    n += pad
                channels = per_frame.shape[2]
                stacked = per_frame.reshape(n // tp, tp, gh * gw, channels, p, p).transpose(0, 2, 3, 1, 4, 5)
                patches.append(stacked.reshape(n // tp * gh * gw, channels * tp * p * p))
                grids.append([n // tp, gh, gw])
            data = {"pixel_values_videos": np.concatenate(patches), "video_grid_thw": np.array(grids, dtype=np.int64)}
            return BatchFeature(data=data, tensor_type=kwargs.get("return_tensors"))

        __call__ = preprocess

    return FramePatchVideoProcessor


def load_processor(path: Path, processor_class: str) -> Any:
    """The checkpoint's processor (``processor_class`` names transformers' class)."""
    import transformers

    cls = getattr(transformers, processor_class)
    attributes = list(cls.get_attributes())
    if "video_processor" not in attributes or torchvision_usable():
        processor = cls.from_pretrained(str(path), local_files_only=True)
    else:
        loaders: dict[str, Any] = {
            "tokenizer": transformers.AutoTokenizer,
            "image_processor": transformers.AutoImageProcessor,
            "feature_extractor": transformers.AutoFeatureExtractor,
        }
        parts: dict[str, Any] = {}
        for name in attributes:
            if name in loaders:
                parts[name] = loaders[name].from_pretrained(str(path), local_files_only=True)
        if "image_processor" not in parts:
            raise CrabEvalError(f"{processor_class}: no image processor to build video patches from", path)
        parts["video_processor"] = frame_patch_class()(parts["image_processor"], video_config(path))

        def check(self: Any, name: str, argument: Any) -> Any:
            # transformers looks the video processor's base class up among torchvision-backed classes
            if name == "video_processor":
                return type(argument)
            return cls.check_argument_for_proper_class(self, name, argument)

        patched = type(cls.__name__, (cls,), {"check_argument_for_proper_class": check})
        processor = patched(**parts, chat_template=chat_template(path, parts.get("tokenizer")))
    if getattr(processor, "chat_template", None) is None:
        raise CrabEvalError("the checkpoint has no chat template (chat_template.jinja or .json)", path)
    processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
    return processor
