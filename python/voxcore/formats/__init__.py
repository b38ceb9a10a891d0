"""Format metadata mapping (Zarr v2/v3 now; OME-NGFF and NIfTI follow)."""
