"""voxcore.zarr: the codec pipeline under the path zarr-python configurations already name.

``zarr.config.set({"codec_pipeline.path": "voxcore.zarr.CodecPipeline"})`` keeps working; the
pipeline itself is :class:`voxcore.codec_pipeline.CodecPipeline` (the same one, also registered
under that path). Both are registered with zarr-python through the package's entry points.
"""

from __future__ import annotations

from zarr.registry import register_pipeline

from .codec_pipeline import CodecPipeline as _CodecPipeline

__all__ = ["CodecPipeline"]


class CodecPipeline(_CodecPipeline):
    """:class:`voxcore.codec_pipeline.CodecPipeline` under its first path, voxcore.zarr."""


register_pipeline(CodecPipeline)
