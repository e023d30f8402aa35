"""The commands users run beside the pipeline: imdb-predict (predict), imdb-serve (serve),
`make compare` (compare) and `make experiments` (experiments)."""
