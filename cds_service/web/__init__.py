"""HTTP routes: thin, no clinical logic."""
