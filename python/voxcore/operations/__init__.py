"""Operations on images: pyramids and downsampling."""
