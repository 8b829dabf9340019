"""The scan: walking the library, planning what changed, preparing each file (decode, thumbnail, capture time,
place) and feeding the encoder in batches that the catalog commits; the scan job and its reports."""
