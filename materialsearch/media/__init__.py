"""Reading the user's files (read-only): decoding photos (HEIC, RAW, orientation traps), sampling video frames,
motion photos, capture times, EXIF facts and GPS, thumbnails and on-demand transcodes."""
