"""The way in: S3-shaped events, safe decoding, uploads, the folder watcher, the
worker and its pipeline (fetch -> decode -> recognise -> index), reprocessing."""
