"""Writers: Zarr arrays, OME-Zarr saves and acquisitions, NIfTI files, pyramid block tasks."""
