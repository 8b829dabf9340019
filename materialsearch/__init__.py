"""materialsearch: search your own photos and videos by a sentence or an example image."""

__version__ = "0.1.0"
