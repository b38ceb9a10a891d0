"""Whole-slide TIFF test files, written at test time with tifffile + imagecodecs (no binaries
are shipped): :mod:`.generate` writes them, :mod:`.oracle` reads them back with tifffile and
OpenSlide, :mod:`.corrupt` patches bytes of a written file for the bad-input suite."""
