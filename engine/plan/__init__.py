"""Plan: the typed jobs of a sweep (fold refs, generator fits, trials, studies)."""
