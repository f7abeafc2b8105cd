"""The training application: presets, CLI, fit loop, logs and plots."""
