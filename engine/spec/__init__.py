"""Spec: a sweep file validated into a typed SweepSpec; the methods, the search space and
the cache keys derived from them."""
