"""Deep Learning with Python, section 3.4 (IMDB sentiment) as a DVC pipeline."""
