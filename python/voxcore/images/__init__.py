"""The image model (model.py) and the kinds of image that implement it, with their openers."""
