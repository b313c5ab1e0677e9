"""The roof: the `dpip` command line, `dpip up`'s supervisor and first-start set-up."""
