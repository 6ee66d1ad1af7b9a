"""Document enrichers: fields derived after recognition (description, perceptual hash, ...)."""
