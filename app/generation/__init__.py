"""Answer generation: a prompt with numbered sources, sent to a backend chosen by name."""
