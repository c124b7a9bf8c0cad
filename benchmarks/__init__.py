"""Scale benchmarks (run by hand, not part of ``make test``): see docs/scale.md."""
