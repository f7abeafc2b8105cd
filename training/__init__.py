"""The training application: presets, CLI, fit loop, logs and plots."""

from training.cli import quiet_tensorflow_start

# The tools run as `python -m training.NAME`, which imports this package
# first: TensorFlow must start quietly before any of them imports it.
quiet_tensorflow_start()
