"""Image recognition: analyzers that turn decoded images into document fields."""
