"""Scale benchmarks (run by hand, not part of ``make test``): see README "Scale and benchmarks"."""
