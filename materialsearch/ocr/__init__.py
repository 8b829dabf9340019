"""Text in photos: the OCR engine (PP-OCRv4 via RapidOCR, offline) and the OCR pass that reads what the scan
marked as holding text."""
