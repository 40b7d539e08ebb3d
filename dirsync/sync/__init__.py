"""The imperative shell around the pure core: one organization, one run, under its lock."""
