"""Public benchmarks turned into algodistill instances, scored by the same sandbox and verifier as the grid."""
