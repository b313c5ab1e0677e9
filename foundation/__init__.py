"""The ground floor every other package stands on: settings, errors, paths, secrets, memory.

It imports no other DPIP package, so any of them may import it.
"""
