"""The parts of stress_test.py, importable so bench/ reuses its image generator and filters."""
