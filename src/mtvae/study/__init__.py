"""Studies: a grid of runs x seeds from a spec, run resumably, stored in SQLite, compared."""
