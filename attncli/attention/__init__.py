"""The math, written once against the array-API namespace: each stage a small pure function."""
