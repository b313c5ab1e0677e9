"""DPIP command line, process supervision and cluster-wide settings."""
